"""The `ckan` provider: a CKAN dataset, BinderHub's spec `<url-escaped dataset URL>`
(e.g. ckan/https%3A%2F%2Fdemo.ckan.org%2Fdataset%2Fsample-dataset-1).

Only installations in settings.providers.ckan_urls are asked (they may live
under a path, e.g. https://data.example.org/catalog). As in repo2docker the
version is the dataset's modification time ("<name>.v<epoch seconds>"); a URL
naming an activity (…/dataset/<name>/history/<activity id>, or
?activity_id=<id>) pins the dataset as it was then.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from services.runtime.hosts import Site, describe_url, sites_from
from services.runtime.settings import ProviderSettings

from .base import ProviderError, ResolvedSource
from .datahttp import DataHttp, DataProvider, epoch_of

__all__ = ["CKANProvider", "parse_dataset_path"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}\Z")


def parse_dataset_path(path: str, query: str) -> tuple[str, str | None] | None:
    """(dataset name or id, activity id or None) from a path below the CKAN's base. Pure."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0] != "dataset":
        return None
    dataset = urllib.parse.unquote(parts[1])
    activity: str | None = None
    if len(parts) >= 4 and parts[2] == "history":
        activity = urllib.parse.unquote(parts[3])
    else:
        values = urllib.parse.parse_qs(query).get("activity_id") or []
        activity = values[0] if values else None
    if not _NAME_RE.match(dataset) or (activity is not None and not _NAME_RE.match(activity)):
        return None
    return dataset, activity


class CKANProvider(DataProvider):
    name = "ckan"
    display = "CKAN"
    example = "https://demo.ckan.org/dataset/sample-dataset-1"

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings, sites_from(settings.ckan_urls))

    def _located(self, url: str) -> tuple[Site, str, str | None] | None:
        for site in self._sites:
            path = site.path_of(url)
            if path is not None:
                found = parse_dataset_path(path, urllib.parse.urlsplit(url).query)
                if found:
                    return site, *found
        return None

    def claims(self, url: str) -> bool:
        return self._located(url) is not None

    async def resolve(self, spec: str) -> ResolvedSource:
        url = urllib.parse.unquote(spec.strip())
        if not url.startswith(("https://", "http://")):
            raise ProviderError(
                f"The spec {spec!r} is not a CKAN dataset URL: the ckan provider expects a url-escaped dataset URL, "
                f"e.g. ckan/{urllib.parse.quote(self.example, safe='')}"
            )
        if self._located(url) is None:
            if not any(site.path_of(url) is not None for site in self._sites):
                known = ", ".join(s.base for s in self._sites) or "none"
                raise ProviderError(f"{describe_url(url)} is not on a CKAN this Binder serves (configured: {known}).")
            raise ProviderError(f"{describe_url(url)} is not a CKAN dataset URL (expected …/dataset/<name>).")
        async with DataHttp(self.display, self.sites(), self.settings.http_timeout_seconds) as http:
            return await self.resolve_landing(http, "", url)

    async def resolve_landing(self, http: DataHttp, doi: str, landing: str) -> ResolvedSource:
        located = self._located(landing)
        assert located is not None
        site, dataset, activity = located
        service = f"CKAN at {site.base}"
        api = site.url("/api/3/action/")
        what = f"CKAN dataset {dataset}"
        package = _result(await http.get_json(api + "package_show?" + urllib.parse.urlencode({"id": dataset}), what=what, service=service), service, what)
        package_id, name = str(package.get("id") or ""), str(package.get("name") or dataset)
        if not _NAME_RE.match(package_id):
            raise ProviderError(f"{service} did not give {what} an id.")
        if activity:
            clone_url = api + "activity_data_show?" + urllib.parse.urlencode({"id": activity, "object_type": "package"})
            what = f"{what} as of activity {activity}"
            package = _result(await http.get_json(clone_url, what=what, service=service), service, what)
            if str(package.get("id") or "") != package_id:
                raise ProviderError(f"Activity {activity} of {service} is not an activity of the dataset {dataset}.")
            version = f"a{activity}"
        else:
            modified = package.get("metadata_modified")
            try:
                version = f"v{epoch_of(modified)}" if isinstance(modified, str) else ""
            except ValueError:
                version = ""
            if not version:
                raise ProviderError(f"{service} did not say when {what} was last modified, so it cannot be pinned.")
            clone_url = api + "package_show?" + urllib.parse.urlencode({"id": package_id})
        if not any(isinstance(r, dict) and r.get("url") for r in package.get("resources") or []):
            raise ProviderError(f"{what} has no resources to download.")
        return self.pinned(
            record_id=f"{name}.{version}",
            site=site,
            repo_url=landing,
            ref_url=landing,
            clone_url=clone_url,
            persistent_spec=urllib.parse.quote(landing, safe=""),
            version=(package_id, version),
        )


def _result(answer: object, service: str, what: str) -> dict[str, Any]:
    """The `result` of a CKAN action answer ({"success": true, "result": {...}})."""
    result = answer.get("result") if isinstance(answer, dict) and answer.get("success") is True else None
    if isinstance(result, dict):
        return result
    raise ProviderError(f"{service} answered something unexpected for {what}.")
