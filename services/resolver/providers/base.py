"""The repository-provider protocol: turn a BinderHub spec into a pinned source."""

from __future__ import annotations

from typing import Callable, Mapping, Protocol

import msgspec

from services.runtime.settings import Settings

__all__ = ["RepoProvider", "ResolvedSource", "ProviderError", "ProviderDirectory"]


class ProviderError(Exception):
    """Resolution failed for a reason a person should read (bad spec, missing ref, unreachable repo)."""


class ResolvedSource(msgspec.Struct, frozen=True, kw_only=True):
    """What a provider learned about a spec."""

    repo_url: str
    ref: str
    resolved_ref: str
    ref_url: str
    clone_url: str
    # Spec that pins the same content forever (BinderHub's persistent spec).
    persistent_spec: str
    # How the builder fetches the content (see schemas.ResolvedRepo.content_provider);
    # with clone_url and resolved_ref it names the environment.
    content_provider: str = "git"
    # A hint for the person launching, sent as a `waiting` event before the launch
    # goes on (e.g. "master is gone, trying HEAD instead; please update your links").
    notice: str = ""
    # The spec the launch really used when the provider substituted one (BinderHub
    # reports it in binder_request); empty means the spec as requested.
    request_spec: str = ""


class RepoProvider(Protocol):
    """A source of repositories (BinderHub's RepoProvider), chosen by spec prefix.

    Implementations are named in services.runtime.plugins.PROVIDER_CLASSES (or
    plugged in with `providers.classes`) and described for everyone else in
    schemas.providers.
    """

    # The spec prefix it serves ("gh"); also its metrics' label.
    name: str

    @classmethod
    def from_settings(cls, settings: Settings, directory: "ProviderDirectory") -> "RepoProvider":
        """The provider as configured. `directory` returns every provider of this resolver
        by prefix, once all are made (a DOI may lead to any of them)."""
        ...

    async def resolve(self, spec: str) -> ResolvedSource:
        """Pin `spec` (the part after "<provider>/") to one commit.

        Raises ProviderError with a message for a person when the spec is malformed,
        refers to something that does not exist, or the repository cannot be reached.
        """
        ...

    async def aclose(self) -> None:
        """Release what it holds (HTTP sessions); called once when the resolver stops."""
        ...


# Every provider of one resolver, by spec prefix.
ProviderDirectory = Callable[[], Mapping[str, RepoProvider]]
