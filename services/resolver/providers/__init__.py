"""Repository providers, chosen by the spec's prefix (`git`, later `gh`, `gl`, ...)."""

from .base import ProviderError, RepoProvider, ResolvedSource
from services.runtime.gitcmd import GitPolicy

from .git import GitProvider

__all__ = ["ProviderError", "RepoProvider", "ResolvedSource", "GitPolicy", "GitProvider", "make_providers"]


def make_providers(policy: GitPolicy) -> dict[str, RepoProvider]:
    """Every provider this resolver serves, keyed by spec prefix."""
    return {"git": GitProvider(policy)}
