"""The `zenodo` provider: a Zenodo record by DOI, BinderHub's spec `<zenodo-DOI>`
(e.g. zenodo/10.5281/zenodo.3242074).

As in BinderHub, the DOI is followed through the DOI resolver to the record's
page; a concept DOI (all versions) lands on the latest version. Each record id
names immutable content, so the record id is the version (BinderHub's
resolved_ref) and the persistent spec is the version's own DOI.
"""

from __future__ import annotations

import re
from typing import Any

from services.runtime.hosts import Site
from services.runtime.settings import ProviderSettings

from .base import ProviderError, ResolvedSource
from .datahttp import DataHttp, DataProvider, doi_with_record, normalize_doi

__all__ = ["ZenodoProvider", "zenodo_files"]

_LANDING_RE = re.compile(r"^/records?/(\d{1,20})/?\Z")


def zenodo_files(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The file entries of a record, in both API shapes (a list, or InvenioRDM's {"entries": ...}). Pure."""
    files = record.get("files")
    if isinstance(files, dict):
        entries = files.get("entries")
        if isinstance(entries, dict):
            return [e for e in entries.values() if isinstance(e, dict)]
        return [e for e in entries or [] if isinstance(e, dict)]
    return [f for f in files or [] if isinstance(f, dict)]


class ZenodoProvider(DataProvider):
    """Zenodo (or another InvenioRDM installation at settings.zenodo_url)."""

    name = "zenodo"
    display = "Zenodo"
    example = "10.5281/zenodo.3242074"

    def __init__(self, settings: ProviderSettings) -> None:
        self.site = Site(settings.zenodo_url)
        super().__init__(settings, [self.site])

    def record_id_of(self, url: str) -> str | None:
        """The record id of a record page URL (…/records/123 or the older …/record/123). Pure."""
        path = self.site.path_of(url)
        match = _LANDING_RE.match(path) if path else None
        return match.group(1) if match else None

    def claims(self, url: str) -> bool:
        return self.record_id_of(url) is not None

    async def resolve_landing(self, http: DataHttp, doi: str, landing: str) -> ResolvedSource:
        record_id = self.record_id_of(landing)
        assert record_id is not None
        record = await http.get_json(self.site.url(f"/api/records/{record_id}"), what=f"Zenodo record {record_id}", service="Zenodo")
        if not isinstance(record, dict):
            raise ProviderError(f"Zenodo answered something unexpected for record {record_id}.")
        # The API answers a concept record with its latest version: trust the record's own id.
        found = str(record.get("id") or record.get("recid") or record_id)
        if not found.isdigit():
            raise ProviderError(f"Zenodo answered record {record_id} with an unexpected id {found[:40]!r}.")
        if not zenodo_files(record):
            raise ProviderError(
                f"Zenodo record {found} has no files that can be downloaded "
                "(its files may be restricted, or the record holds metadata only)."
            )
        version_doi = normalize_doi(str(record.get("doi") or (record.get("metadata") or {}).get("doi") or ""))
        version_doi = version_doi or doi_with_record(doi, "zenodo", found)
        return self.pinned(
            record_id=found,
            site=self.site,
            repo_url=doi,
            ref_url=self.doi_url(version_doi),
            clone_url=self.site.url(f"/api/records/{found}"),
            persistent_spec=version_doi,
        )
