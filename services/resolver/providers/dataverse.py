"""The `dataverse` provider: a Dataverse dataset by DOI, BinderHub's spec
`<dataverse-DOI>` (e.g. dataverse/10.7910/DVN/TJCLKP).

The DOI leads to a dataset (or file) page on one of the installations in
settings.providers.dataverse_urls; any other installation is refused. As in
BinderHub the version is "<dataset id>.v<major>.<minor>" of the latest
published version, and the builder fetches exactly that version.
"""

from __future__ import annotations

import re
import urllib.parse

from services.runtime.settings import ProviderSettings

from .base import ProviderError, ResolvedSource
from .datahttp import DataHttp, Site, content_ref, resolve_via_doi, sites_from

__all__ = ["DataverseProvider", "persistent_id_of"]


def persistent_id_of(path: str, query: str) -> str | None:
    """The dataset's persistent id ("doi:10.7910/DVN/TJCLKP") from a page's path and query. Pure.

    Dataset pages are /citation and /dataset.xhtml; a file page (/file.xhtml)
    names a file whose id extends its dataset's by one segment.
    """
    values = urllib.parse.parse_qs(query).get("persistentId") or []
    pid = values[0].strip() if values else ""
    if not pid:
        return None
    if path in ("/citation", "/dataset.xhtml"):
        return pid
    if path == "/file.xhtml":
        dataset = pid.rsplit("/", 1)[0]
        # doi:10.7910/DVN/6ZXAGT/3YRRYJ names a file of doi:10.7910/DVN/6ZXAGT.
        return dataset if dataset != pid and dataset.count("/") >= 1 else None
    return None


class DataverseProvider:
    name = "dataverse"
    display = "Dataverse"
    example = "10.7910/DVN/TJCLKP"

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self._sites = sites_from(settings.dataverse_urls)

    def sites(self) -> list[Site]:
        return list(self._sites)

    def _located(self, url: str) -> tuple[Site, str] | None:
        for site in self._sites:
            path = site.path_of(url)
            if path is not None:
                pid = persistent_id_of(path, urllib.parse.urlsplit(url).query)
                if pid:
                    return site, pid
        return None

    def claims(self, url: str) -> bool:
        return self._located(url) is not None

    async def resolve(self, spec: str) -> ResolvedSource:
        return await resolve_via_doi(self, self.settings, spec)

    async def resolve_landing(self, http: DataHttp, doi: str, landing: str) -> ResolvedSource:
        located = self._located(landing)
        assert located is not None
        site, pid = located
        service = f"Dataverse at {site.base}"
        what = f"Dataverse dataset {pid}"
        url = site.url("/api/datasets/:persistentId/?persistentId=" + urllib.parse.quote(pid, safe=":/"))
        answer = await http.get_json(url, what=what, service=service)
        data = answer.get("data") if isinstance(answer, dict) and answer.get("status") == "OK" else None
        if not isinstance(data, dict):
            raise ProviderError(f"{service} answered something unexpected for {what}.")
        latest = data.get("latestVersion") or {}
        dataset_id, major, minor = data.get("id"), latest.get("versionNumber"), latest.get("versionMinorNumber")
        if not isinstance(dataset_id, int):
            raise ProviderError(f"{service} did not give {what} a dataset id.")
        if not isinstance(major, int) or not isinstance(minor, int):
            raise ProviderError(f"{what} has no published version yet (its latest version is a draft).")
        if not latest.get("files"):
            raise ProviderError(f"{what} version {major}.{minor} has no files.")
        record_id = f"{dataset_id}.v{major}.{minor}"
        authority, identifier = str(data.get("authority") or ""), str(data.get("identifier") or "")
        resolved_spec = f"{authority}/{identifier}" if authority and identifier else doi
        resolver = self.settings.doi_resolver_url.rstrip("/")
        ref_url = data.get("persistentUrl") if isinstance(data.get("persistentUrl"), str) else f"{resolver}/{resolved_spec}"
        slug = re.sub(r"[^a-z0-9]+", "-", (identifier or str(dataset_id)).lower()).strip("-")
        return ResolvedSource(
            repo_url=doi,
            ref=record_id,
            resolved_ref=content_ref(self.name, site.base, record_id),
            ref_url=ref_url,
            clone_url=site.url(f"/api/datasets/{dataset_id}/versions/{major}.{minor}"),
            persistent_spec=resolved_spec,
            build_slug=f"dataverse-{slug}",
            content_provider=self.name,
        )
