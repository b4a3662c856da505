"""Configured hosts: which URLs belong to a site this Binder was told to use.

The resolver (asking data repositories' APIs) and the builder (downloading
their files) both talk only to sites named in settings.providers, redirects
included. Both decide "is this URL on that site?" here, so the two can never
disagree about where a request may go.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from http import HTTPStatus
from typing import Iterable

__all__ = ["Site", "sites_from", "describe_url", "status_text", "USER_AGENT", "REDIRECT_STATUSES"]

USER_AGENT = "binderflow (BinderHub-compatible; +https://mybinder.readthedocs.io)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Site:
    """One configured base URL (e.g. https://zenodo.org, https://data.example.org/ckan).

    `subdomains` also accepts hosts below this one (ndownloader.figshare.com for
    figshare.com, an institution's portal on a subdomain).
    """

    base: str
    subdomains: bool = False

    @property
    def _parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.base.rstrip("/"))

    @property
    def prefix(self) -> str:
        """The path the site lives under, without a trailing '/' ("" at the root)."""
        return self._parts.path.rstrip("/")

    @property
    def host(self) -> str:
        return (self._parts.hostname or "").lower()

    def owns(self, url: str) -> bool:
        """Is `url` on this site's host (and port)? The path is not looked at.

        Only http(s) URLs without credentials qualify.
        """
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
            mine = self._parts
            my_port = mine.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.username or parts.password:
            return False
        host = (parts.hostname or "").lower()
        if host == self.host:
            if (port or _default_port(parts.scheme)) == (my_port or _default_port(mine.scheme)):
                return True
            # DOIs are often registered with http:// URLs of https:// sites (which redirect).
            return parts.scheme == "http" and port in (None, 80) and mine.scheme == "https" and my_port in (None, 443)
        if self.subdomains and "." in self.host and not _is_ip(self.host):
            return host.endswith("." + self.host) and port in (None, 80, 443)
        return False

    def path_of(self, url: str) -> str | None:
        """The path of `url` below this site's prefix ("/records/1"), or None if elsewhere."""
        if not self.owns(url):
            return None
        path = urllib.parse.urlsplit(url).path
        prefix = self.prefix
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return None
        return path[len(prefix):] or "/"

    def url(self, path: str) -> str:
        """An absolute URL on this site: base + path ("/api/records/1")."""
        return self.base.rstrip("/") + path


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _is_ip(host: str) -> bool:
    return bool(re.match(r"^[0-9.]+\Z", host)) or ":" in host


def sites_from(urls: Iterable[str], subdomains: bool = False) -> list[Site]:
    """A Site for each non-empty URL (a setting's list may hold empty entries)."""
    return [Site(u, subdomains) for u in urls if u]


def describe_url(url: str) -> str:
    """A URL shortened for messages: scheme, host and path, no query or credentials."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if port:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path}"


def status_text(status: int) -> str:
    """An HTTP status with its reason phrase ("404 Not Found"), for messages."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)
