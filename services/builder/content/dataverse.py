"""Fetch one version of a Dataverse dataset: its files in their folders (a single zip archive unpacked).

Tabular files Dataverse ingested are fetched in their original format, as
repo2docker does. Restricted files cannot be downloaded without an account and
are left out, with a line in the log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

from schemas import ResolvedRepo
from services.runtime.gitcmd import GitPolicy
from services.runtime.hosts import Site, sites_from

from ..errors import BuildError
from .datafiles import DataFetcher, RecordFile, Transfer, counted

__all__ = ["DataverseFetcher", "dataverse_version_files"]


def dataverse_version_files(answer: Any, base: str) -> tuple[list[RecordFile], list[str]]:
    """(files to fetch, names of restricted files left out) of a dataset version answer. Pure."""
    data = answer.get("data") if isinstance(answer, dict) and answer.get("status") == "OK" else None
    if not isinstance(data, dict):
        raise BuildError("Dataverse answered something that is not a dataset version.")
    found, restricted = [], []
    for entry in data.get("files") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("dataFile"), dict):
            continue
        datafile = entry["dataFile"]
        file_id = datafile.get("id")
        original = datafile.get("originalFileName")
        name = original or entry.get("label") or datafile.get("filename")
        if not isinstance(file_id, int) or not isinstance(name, str):
            continue
        folder = entry.get("directoryLabel")
        path = f"{folder}/{name}" if isinstance(folder, str) and folder else name
        if entry.get("restricted"):
            restricted.append(path)
            continue
        url = base.rstrip("/") + f"/api/access/datafile/{file_id}" + ("?format=original" if original else "")
        checksum = datafile.get("checksum") if isinstance(datafile.get("checksum"), dict) else {}
        md5 = datafile.get("md5") or (checksum.get("value") if str(checksum.get("type", "")).upper() == "MD5" else None)
        size = datafile.get("originalFileSize") if original else datafile.get("filesize")
        found.append(RecordFile(name=path, url=url, size=size if isinstance(size, int) else None, md5=md5 if isinstance(md5, str) and not original else None))
    return found, restricted


class DataverseFetcher(DataFetcher):
    display = "Dataverse"

    @classmethod
    def from_settings(cls, settings: Any, git_policy: GitPolicy) -> "DataverseFetcher":
        return cls(sites_from(settings.providers.dataverse_urls), git_policy, cls.limits_from_settings(settings))

    def _base_of(self, url: str) -> str:
        for site in self.sites:
            path = site.path_of(url)
            if path is not None and path.startswith("/api/"):
                return site.base
        raise BuildError(f"Refusing to fetch from {url!r}: it is not on a Dataverse this Binder is configured to use.")

    async def _fetch(self, t: Transfer, repo: ResolvedRepo, workdir: Path) -> AsyncIterator[str]:
        base = self._base_of(repo.clone_url)
        record = f"Dataverse dataset {repo.repo_url} version {repo.ref}"
        files, restricted = dataverse_version_files(await t.get_json(repo.clone_url, record), base)
        yield f"{record}: {counted(len(files), 'file')}"
        for name in restricted:
            yield f"Leaving out {name}: the file is restricted and cannot be downloaded without an account"
        async for line in t.place(files, workdir, record):
            yield line
