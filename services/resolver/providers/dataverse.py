"""The `dataverse` provider: a Dataverse dataset by DOI, BinderHub's spec
`<dataverse-DOI>` (e.g. dataverse/10.7910/DVN/TJCLKP).

The DOI leads to a dataset (or file) page on one of the installations in
settings.providers.dataverse_urls; any other installation is refused. As in
BinderHub the version is "<dataset id>.v<major>.<minor>" of the latest
published version, and the builder fetches exactly that version.
"""

from __future__ import annotations

import urllib.parse

from services.runtime.hosts import Site, sites_from
from services.runtime.settings import ProviderSettings

from .base import ProviderError, ResolvedSource
from .datahttp import DataHttp, DataProvider

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


class DataverseProvider(DataProvider):
    name = "dataverse"
    display = "Dataverse"
    example = "10.7910/DVN/TJCLKP"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings, sites_from(settings.dataverse_urls))

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
        authority, identifier = str(data.get("authority") or ""), str(data.get("identifier") or "")
        resolved_spec = f"{authority}/{identifier}" if authority and identifier else doi
        persistent_url = data.get("persistentUrl")
        return self.pinned(
            record_id=f"{dataset_id}.v{major}.{minor}",
            site=site,
            repo_url=doi,
            ref_url=persistent_url if isinstance(persistent_url, str) else self.doi_url(resolved_spec),
            clone_url=site.url(f"/api/datasets/{dataset_id}/versions/{major}.{minor}"),
            persistent_spec=resolved_spec,
        )
