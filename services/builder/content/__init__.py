"""Content fetchers, keyed by ResolvedRepo.content_provider; `make_fetchers` builds them from settings."""

from __future__ import annotations

from services.runtime.gitcmd import GitPolicy
from services.runtime.settings import Settings

from .base import ContentFetcher
from .git import GitFetcher
from .ckan import CKANFetcher
from .dataverse import DataverseFetcher
from .figshare import FigshareFetcher
from .hydroshare import HydroshareFetcher
from .zenodo import ZenodoFetcher

__all__ = ["ContentFetcher", "GitFetcher", "make_fetchers"]


def make_fetchers(settings: Settings, git_policy: GitPolicy) -> dict[str, ContentFetcher]:
    return {
        "git": GitFetcher(git_policy, settings.builder.git_timeout_seconds),
        "zenodo": ZenodoFetcher.from_settings(settings, git_policy),
        "figshare": FigshareFetcher.from_settings(settings, git_policy),
        "hydroshare": HydroshareFetcher.from_settings(settings, git_policy),
        "dataverse": DataverseFetcher.from_settings(settings, git_policy),
        "ckan": CKANFetcher.from_settings(settings, git_policy),
    }
