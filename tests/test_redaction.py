"""Credentials never shown (services/runtime/redaction.py): URLs named in messages, and free text."""

from __future__ import annotations

import pytest

from services.runtime.redaction import MASK, Redactor, redact_url, url_credentials


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:tok@index.example/simple", "https://index.example/simple"),
        ("https://tok@[::1]:8443/x", "https://[::1]:8443/x"),
        ("git://host/repo", "git://host/repo"),
        ("http://[::1", "<invalid url>"),
    ],
)
def test_urls_are_shown_without_their_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_credentials_of_a_url_are_found_as_written_and_decoded() -> None:
    assert url_credentials("https://bin%40der:p%2Fss@h/") == ["p%2Fss", "p/ss"]
    assert url_credentials("https://ghp_token123@h/") == ["ghp_token123", "ghp_token123"]
    assert url_credentials("https://h/") == [] and url_credentials("/local/dir") == [] and url_credentials("https://user:@h/") == []


def test_a_redactor_masks_each_secret_wherever_a_tool_prints_it() -> None:
    redactor = Redactor.for_urls(["https://binder:s3cret-token@index.example/simple", "/wheels"])
    line = "error: 401 from https://binder:s3cret-token@index.example/simple/numpy/ (token s3cret-token)"
    assert redactor.text(line) == f"error: 401 from https://binder:{MASK}@index.example/simple/numpy/ (token {MASK})"
    assert Redactor([]).text(line) == line


def test_secrets_too_short_to_be_worth_masking_are_left() -> None:
    assert Redactor(["a", "ab"]).text("a cab") == "a cab"
