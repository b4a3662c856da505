"""The `doi` provider: any DOI, sent to the provider its landing page belongs to.

The DOI resolver's redirects are followed to the record's page; a page on
Zenodo, Figshare, HydroShare, a configured Dataverse or CKAN is resolved by that
provider, and a repository page on the configured GitHub or GitLab by the `gh`
or `gl` provider (or `git` when those are not served). A DOI leading anywhere
else is refused without fetching the page.

The source is the one the provider it leads to pins, so a `doi/…` launch uses
(and builds) the same environment as the direct `zenodo/…`, `gh/…`, … link:
environments are named by what is fetched (domain.environment_name).

The persistent spec stays a DOI so that `v2/doi/<persistent spec>` launches the
same content again: the version DOI where the record has one, otherwise the DOI
as given (HydroShare resources, CKAN datasets and Git repositories carry no
version in their DOI).
"""

from __future__ import annotations

import urllib.parse
from typing import Callable, Mapping

import msgspec

from services.runtime.hosts import Site, describe_url
from services.runtime.settings import ProviderSettings, Settings

from .base import ProviderDirectory, ProviderError, RepoProvider, ResolvedSource
from .ckan import CKANProvider
from .datahttp import DataHttp, DataProvider, normalize_doi
from .dataverse import DataverseProvider
from .figshare import FigshareProvider
from .hydroshare import HydroshareProvider
from .zenodo import ZenodoProvider

__all__ = ["DoiProvider"]


class DoiProvider:
    name = "doi"

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "DoiProvider":
        return cls(settings.providers, directory)

    def __init__(self, settings: ProviderSettings, providers: Callable[[], Mapping[str, RepoProvider]] | None = None) -> None:
        """`providers` returns this resolver's providers by prefix, for DOIs leading to Git hosts."""
        self.settings = settings
        self.targets: list[DataProvider] = [
            ZenodoProvider(settings),
            FigshareProvider(settings),
            HydroshareProvider(settings),
            DataverseProvider(settings),
            CKANProvider(settings),
        ]
        self._providers = providers or (lambda: {})
        self.github = Site(settings.github_url)
        self.gitlab = Site(settings.gitlab_url)

    async def aclose(self) -> None:
        """Nothing to release: each resolve opens (and closes) its own HTTP session."""

    def _enabled(self, prefix: str) -> bool:
        return prefix in self.settings.enabled

    def served_targets(self) -> list[DataProvider]:
        return [t for t in self.targets if self._enabled(t.name)]

    def git_target(self, url: str) -> tuple[str, str] | None:
        """(provider prefix, spec) for a repository page on the configured GitHub or GitLab. Pure."""
        providers = self._providers()

        def usable(prefix: str) -> bool:
            return prefix in providers and self._enabled(prefix)

        for site, prefix in ((self.github, "gh"), (self.gitlab, "gl")):
            path = site.path_of(url)
            if path is None:
                continue
            parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
            if prefix == "gh":
                if len(parts) < 2:
                    return None
                namespace = parts[:2]
                rest = parts[2:]
            else:
                cut = parts.index("-") if "-" in parts else len(parts)
                namespace, rest = parts[:cut], parts[cut + 1:]
                if len(namespace) < 2:
                    return None
            namespace[-1] = namespace[-1].removesuffix(".git")
            ref = "/".join(rest[1:]) if len(rest) >= 2 and rest[0] == "tree" else "HEAD"
            if usable(prefix) and prefix == "gh":
                return "gh", f"{namespace[0]}/{namespace[1]}/{ref}"
            if usable(prefix):
                return "gl", f"{urllib.parse.quote('/'.join(namespace), safe='')}/{urllib.parse.quote(ref, safe='')}"
            if usable("git"):
                clone = site.url("/" + "/".join(namespace))
                return "git", f"{urllib.parse.quote(clone, safe='')}/{urllib.parse.quote(ref, safe='')}"
            return None
        return None

    async def resolve(self, spec: str) -> ResolvedSource:
        doi = normalize_doi(spec, self.settings.doi_resolver_url)
        if doi is None:
            raise ProviderError(f"The spec {spec!r} is not a DOI: the doi provider expects a DOI such as doi/10.5281/zenodo.3242074")
        targets = self.served_targets()
        resolver = Site(self.settings.doi_resolver_url)
        sites = [resolver, *(s for t in targets for s in t.sites()), self.github, self.gitlab]

        def arrived(url: str) -> bool:
            return any(t.claims(url) for t in targets) or self.git_target(url) is not None

        source: ResolvedSource | None = None
        async with DataHttp("the DOI resolver", sites, self.settings.http_timeout_seconds) as http:
            landing = await http.follow_doi(resolver, doi, arrived)
            for target in targets:
                if target.claims(landing):
                    source = await target.resolve_landing(http, doi, landing)
                    break
        if source is None:
            git = self.git_target(landing)
            if git is None:
                served = ", ".join(t.display for t in targets) or "none"
                raise ProviderError(
                    f"The DOI {doi} leads to {describe_url(landing)}, which is not on a repository this Binder serves "
                    f"(data repositories: {served}; Git hosts: {self.github.base}, {self.gitlab.base})."
                )
            prefix, git_spec = git
            source = await self._providers()[prefix].resolve(git_spec)
        persistent = source.persistent_spec if normalize_doi(source.persistent_spec) else doi
        return msgspec.structs.replace(source, persistent_spec=persistent)
