"""Keeping credentials out of what is shown: logs, events, messages and command lines.

Operators put credentials in URLs (`https://user:token@index.example/simple`);
repositories' URLs may carry them too. Whatever binderflow shows passes
through here: `redact_url` for a URL it names, `Redactor` for free text (a
tool's output) that may repeat a configured secret.
"""

from __future__ import annotations

import urllib.parse
from typing import Iterable

from schemas.providers import without_userinfo

__all__ = ["redact_url", "url_credentials", "Redactor", "MASK"]

MASK = "****"


def redact_url(url: str) -> str:
    """The URL without any user:password part, for logs and messages. Never raises."""
    try:
        urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid url>"
    return without_userinfo(url)


def url_credentials(url: str) -> list[str]:
    """The secret in `url`'s user part, as written and percent-decoded ([] when there is none).

    That is the password of `user:password@`, or the whole of `token@` (a lone
    user part is how tokens travel in URLs); a user name beside a password is
    not secret, and masking it would mask every word that contains it.
    """
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at or not userinfo:
        return []
    _, colon, password = userinfo.partition(":")
    secret = password if colon else userinfo
    return [secret, urllib.parse.unquote(secret)] if secret else []


class Redactor:
    """Replaces every given secret in a text with a mask."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole. Very short
        # strings (a user name "a") would mask half of every line: not secrets worth it.
        self._secrets = sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True)

    @classmethod
    def for_urls(cls, urls: Iterable[str]) -> "Redactor":
        """Masks the credentials of any of `urls`."""
        return cls(secret for url in urls for secret in url_credentials(url))

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
