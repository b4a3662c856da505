"""Fetch one version of a Figshare article: its files (a single zip archive unpacked).

Files that are only links to elsewhere (`is_link_only`) are left out, as repo2docker does.
"""

from __future__ import annotations

from typing import Any

from services.runtime.gitcmd import GitPolicy
from services.runtime.hosts import Site

from ..errors import BuildError
from .datafiles import ListedFilesFetcher, RecordFile

__all__ = ["FigshareFetcher", "figshare_article_files"]


def figshare_article_files(article: Any) -> list[RecordFile]:
    """The downloadable files of a Figshare article answer. Pure."""
    if not isinstance(article, dict):
        raise BuildError("Figshare answered something that is not an article.")
    found = []
    for entry in article.get("files") or []:
        if not isinstance(entry, dict) or entry.get("is_link_only"):
            continue
        name, url = entry.get("name"), entry.get("download_url")
        if not isinstance(name, str) or not isinstance(url, str):
            continue
        md5 = entry.get("computed_md5") or entry.get("supplied_md5") or None
        size = entry.get("size")
        found.append(RecordFile(name=name, url=url, size=size if isinstance(size, int) else None, md5=md5 if isinstance(md5, str) else None))
    return found


class FigshareFetcher(ListedFilesFetcher):
    display = "Figshare"
    record_kind = "Figshare article"

    @classmethod
    def from_settings(cls, settings: Any, git_policy: GitPolicy) -> "FigshareFetcher":
        p = settings.providers
        # Files are served from figshare.com's subdomains (ndownloader.figshare.com).
        return cls([Site(p.figshare_api_url), Site(p.figshare_url, subdomains=True)], git_policy, cls.limits_from_settings(settings))

    def files_of(self, answer: Any) -> list[RecordFile]:
        return figshare_article_files(answer)
