"""The `hydroshare` provider: a HydroShare resource, BinderHub's spec
`<resource id>` (32 hex digits) or the resource's URL.

HydroShare keeps no history: as in BinderHub the version is the resource's
modification time ("<id>.v<epoch seconds>"), and the persistent spec is the
resource id itself, which always means the current content.
"""

from __future__ import annotations

import re
import urllib.parse

from services.runtime.hosts import Site, describe_url
from services.runtime.settings import ProviderSettings

from .base import ProviderError, ResolvedSource
from .datahttp import DataHttp, DataProvider, epoch_of

__all__ = ["HydroshareProvider"]

_ID_RE = re.compile(r"(?<![0-9a-f])([0-9a-f]{32})(?![0-9a-f])")
_LANDING_RE = re.compile(r"^/resource/([0-9a-f]{32})/?\Z")


class HydroshareProvider(DataProvider):
    name = "hydroshare"
    display = "HydroShare"
    example = "https://www.hydroshare.org/resource/<resource id>"

    def __init__(self, settings: ProviderSettings) -> None:
        self.site = Site(settings.hydroshare_url)
        super().__init__(settings, [self.site])

    def parse_spec(self, spec: str) -> str:
        """The resource id in a spec: the id itself, or a HydroShare URL containing it."""
        text = urllib.parse.unquote(spec).strip().rstrip("/")
        if "://" in text:
            if not self.site.owns(text):
                raise ProviderError(f"{describe_url(text)} is not on this Binder's HydroShare ({self.site.base}).")
            match = _ID_RE.search(urllib.parse.urlsplit(text).path)
        else:
            match = _ID_RE.fullmatch(text)
        if match is None:
            raise ProviderError(
                f"The spec {spec!r} is not a HydroShare resource: the hydroshare provider expects a resource id "
                "(32 hexadecimal digits) or the resource's URL, e.g. hydroshare/b8f6eae9d89241cf8b5904033460af61"
            )
        return match.group(1)

    def claims(self, url: str) -> bool:
        path = self.site.path_of(url)
        return bool(path and _LANDING_RE.match(path))

    async def resolve(self, spec: str) -> ResolvedSource:
        resource_id = self.parse_spec(spec)
        async with DataHttp(self.display, self.sites(), self.settings.http_timeout_seconds) as http:
            return await self._resolve(http, resource_id)

    async def resolve_landing(self, http: DataHttp, doi: str, landing: str) -> ResolvedSource:
        path = self.site.path_of(landing) or ""
        match = _LANDING_RE.match(path)
        assert match is not None
        return await self._resolve(http, match.group(1))

    async def _resolve(self, http: DataHttp, resource_id: str) -> ResolvedSource:
        what = f"HydroShare resource {resource_id}"
        meta = await http.get_json(self.site.url(f"/hsapi/resource/{resource_id}/scimeta/elements"), what=what, service="HydroShare")
        dates = meta.get("dates") if isinstance(meta, dict) else None
        modified = next((d.get("start_date") for d in dates or [] if isinstance(d, dict) and d.get("type") == "modified"), None)
        if not isinstance(modified, str):
            raise ProviderError(f"HydroShare did not say when {what} was last modified, so it cannot be pinned.")
        try:
            version = epoch_of(modified)
        except ValueError:
            raise ProviderError(f"HydroShare gave {what} a modification time that is not a date: {modified[:40]!r}") from None
        repo_url = self.site.url(f"/resource/{resource_id}")
        return self.pinned(
            record_id=f"{resource_id}.v{version}",
            site=self.site,
            repo_url=repo_url,
            ref_url=repo_url,
            clone_url=self.site.url(f"/django_irods/download/bags/{resource_id}"),
            persistent_spec=resource_id,
        )
