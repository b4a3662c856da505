"""Repository providers, chosen by the spec's prefix (`git`, later `gh`, `gl`, ...)."""

from .base import ProviderError, RepoProvider, ResolvedSource
from services.runtime.gitcmd import GitPolicy
from services.runtime.settings import Settings

from .git import GitProvider

__all__ = ["ProviderError", "RepoProvider", "ResolvedSource", "GitPolicy", "GitProvider", "make_providers"]


def make_providers(settings: Settings, policy: GitPolicy) -> dict[str, RepoProvider]:
    """The providers this resolver serves (settings.providers.enabled), keyed by spec prefix."""
    available: dict[str, RepoProvider] = {
        "git": GitProvider(policy),
    }
    return {prefix: p for prefix, p in available.items() if prefix in settings.providers.enabled}
