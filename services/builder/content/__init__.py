"""Content fetchers, keyed by ResolvedRepo.content_provider; `make_fetchers` builds them from settings."""

from __future__ import annotations

from services.runtime.gitcmd import GitPolicy
from services.runtime.settings import Settings

from .base import ContentFetcher
from .git import GitFetcher

__all__ = ["ContentFetcher", "GitFetcher", "make_fetchers"]


def make_fetchers(settings: Settings, git_policy: GitPolicy) -> dict[str, ContentFetcher]:
    return {
        "git": GitFetcher(git_policy, settings.builder.git_timeout_seconds),
    }
