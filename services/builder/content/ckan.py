"""Fetch a CKAN dataset: its resources (a single zip archive unpacked).

The dataset is read from the API URL the resolver pinned (package_show, or
activity_data_show for a dataset as it was at one activity). Resources stored on
the CKAN itself are downloaded; resources that only link to other sites are
left out with a line in the log, since this Binder fetches from configured
hosts only.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any, AsyncIterator

from schemas import ResolvedRepo
from services.runtime.gitcmd import GitPolicy
from services.runtime.hosts import Site, sites_from

from ..errors import BuildError
from .datafiles import DataFetcher, RecordFile, Transfer, counted

__all__ = ["CKANFetcher", "ckan_resources"]


def ckan_resources(answer: Any) -> list[tuple[str, str, int | None]]:
    """(file name, URL, size) of each resource with a URL in a CKAN action answer. Pure.

    The file name is the URL's last path segment (the resource id when it has none).
    """
    result = answer.get("result") if isinstance(answer, dict) and answer.get("success") is True else None
    if not isinstance(result, dict):
        raise BuildError("CKAN answered something that is not a dataset.")
    found = []
    for resource in result.get("resources") or []:
        if not isinstance(resource, dict):
            continue
        url = resource.get("url")
        if not isinstance(url, str) or not url.strip():
            continue
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]) or str(resource.get("id") or "")
        size = resource.get("size")
        found.append((name, url.strip(), size if isinstance(size, int) else None))
    return found


class CKANFetcher(DataFetcher):
    display = "CKAN"

    @classmethod
    def from_settings(cls, settings: Any, git_policy: GitPolicy) -> "CKANFetcher":
        return cls(sites_from(settings.providers.ckan_urls), git_policy, cls.limits_from_settings(settings))

    async def _fetch(self, t: Transfer, repo: ResolvedRepo, workdir: Path) -> AsyncIterator[str]:
        record = f"CKAN dataset {repo.ref}"
        resources = ckan_resources(await t.get_json(repo.clone_url, record))
        files = []
        for name, url, size in resources:
            if not t.on_configured_host(url):
                yield f"Leaving out {name or url}: it links to {urllib.parse.urlsplit(url).hostname or url}, outside this CKAN"
                continue
            files.append(RecordFile(name=name, url=url, size=size))
        yield f"{record} ({repo.repo_url}): {counted(len(files), 'resource')} to download"
        async for line in t.place(files, workdir, record):
            yield line
