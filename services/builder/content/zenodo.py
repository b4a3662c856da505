"""Fetch a Zenodo record: the files its API lists (a single zip archive unpacked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

from schemas import ResolvedRepo
from services.runtime.gitcmd import GitPolicy

from ..errors import BuildError
from .datafiles import DataFetcher, RecordFile, Site, Transfer

__all__ = ["ZenodoFetcher", "zenodo_record_files"]


def zenodo_record_files(record: Any) -> list[RecordFile]:
    """The files of a Zenodo record answer, in the legacy list shape or InvenioRDM's {"entries": ...}. Pure."""
    if not isinstance(record, dict):
        raise BuildError("Zenodo answered something that is not a record.")
    files = record.get("files")
    if isinstance(files, dict):
        entries = files.get("entries")
        files = list(entries.values()) if isinstance(entries, dict) else entries
    found = []
    for entry in files or []:
        if not isinstance(entry, dict):
            continue
        links = entry.get("links") or {}
        name = entry.get("key") or entry.get("filename")
        url = links.get("content") or links.get("self") or links.get("download")
        if not isinstance(name, str) or not isinstance(url, str):
            continue
        checksum = entry.get("checksum")
        md5 = checksum[4:] if isinstance(checksum, str) and checksum.startswith("md5:") else None
        size = entry.get("size", entry.get("filesize"))
        found.append(RecordFile(name=name, url=url, size=size if isinstance(size, int) else None, md5=md5))
    return found


class ZenodoFetcher(DataFetcher):
    display = "Zenodo"

    @classmethod
    def from_settings(cls, settings: Any, git_policy: GitPolicy) -> "ZenodoFetcher":
        return cls([Site(settings.providers.zenodo_url)], git_policy, cls.limits_from_settings(settings))

    async def _fetch(self, t: Transfer, repo: ResolvedRepo, workdir: Path) -> AsyncIterator[str]:
        record = f"Zenodo record {repo.ref}"
        files = zenodo_record_files(await t.get_json(repo.clone_url, record))
        yield f"{record} ({repo.repo_url}): {len(files)} file{'s' if len(files) != 1 else ''}"
        async for line in t.place(files, workdir, record):
            yield line
