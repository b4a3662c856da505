"""Fetch a Zenodo record: the files its API lists (a single zip archive unpacked)."""

from __future__ import annotations

from typing import Any

from services.runtime.gitcmd import GitPolicy
from services.runtime.hosts import Site

from ..errors import BuildError
from .datafiles import ListedFilesFetcher, RecordFile

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


class ZenodoFetcher(ListedFilesFetcher):
    display = "Zenodo"
    record_kind = "Zenodo record"

    @classmethod
    def from_settings(cls, settings: Any, git_policy: GitPolicy) -> "ZenodoFetcher":
        return cls([Site(settings.providers.zenodo_url)], git_policy, cls.limits_from_settings(settings))

    def files_of(self, answer: Any) -> list[RecordFile]:
        return zenodo_record_files(answer)
