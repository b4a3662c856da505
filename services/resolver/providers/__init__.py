"""Repository providers, chosen by the spec's prefix (`gh`, `git`, `zenodo`, `doi`, ...)."""

from .base import ProviderError, RepoProvider, ResolvedSource
from services.runtime.gitcmd import GitPolicy
from services.runtime.settings import Settings

from .git import GitProvider
from .gist import GistProvider
from .github import GitHubProvider
from .gitlab import GitLabProvider
from .ckan import CKANProvider
from .dataverse import DataverseProvider
from .doi import DoiProvider
from .figshare import FigshareProvider
from .hydroshare import HydroshareProvider
from .zenodo import ZenodoProvider

__all__ = ["ProviderError", "RepoProvider", "ResolvedSource", "GitPolicy", "GitProvider", "make_providers"]


def make_providers(settings: Settings, policy: GitPolicy) -> dict[str, RepoProvider]:
    """The providers this resolver serves (settings.providers.enabled), keyed by spec prefix."""
    available: dict[str, RepoProvider] = {
        "git": GitProvider(policy),
        "gh": GitHubProvider(settings.providers),
        "gist": GistProvider(settings.providers, allow_secret_gist=settings.providers.allow_secret_gist),
        "gl": GitLabProvider(settings.providers),
        "zenodo": ZenodoProvider(settings.providers),
        "figshare": FigshareProvider(settings.providers),
        "hydroshare": HydroshareProvider(settings.providers),
        "dataverse": DataverseProvider(settings.providers),
        "ckan": CKANProvider(settings.providers),
        # A DOI leading to a Git host is resolved by the provider of that host.
        "doi": DoiProvider(settings.providers, lambda: available),
    }
    return {prefix: p for prefix, p in available.items() if prefix in settings.providers.enabled}
