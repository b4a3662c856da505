"""The content-fetcher protocol: put a pinned repository's files in a directory."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncGenerator, Protocol

from schemas import ResolvedRepo

__all__ = ["ContentFetcher"]


class ContentFetcher(Protocol):
    def fetch(self, repo: ResolvedRepo, workdir: Path) -> AsyncGenerator[str, None]:
        """Write the files of `repo` at `repo.resolved_ref` into `workdir` (which exists and is empty).

        Yields log lines for the person watching. Raises BuildError (from
        services.builder.executors.base) with a message for a person when the
        content cannot be fetched.
        """
        ...
