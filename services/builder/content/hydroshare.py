"""Fetch a HydroShare resource: its bag (a zip HydroShare prepares on demand),
of which only the resource's contents (<id>/data/contents/) are kept, as
repo2docker does.

HydroShare answers with a page instead of the zip while the bag is being
prepared; the fetcher asks again every `poll_seconds` for up to `wait_seconds`.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, AsyncIterator

from schemas import ResolvedRepo
from services.runtime.gitcmd import GitPolicy
from services.runtime.hosts import Site

from ..errors import BuildError
from .datafiles import DataFetcher, Transfer, extract_zip, human_size, move_contents

__all__ = ["HydroshareFetcher", "bag_contents"]

_ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/x-zip")


def bag_contents(member: PurePosixPath) -> PurePosixPath | None:
    """Where a bag member goes: <id>/data/contents/<path> -> <path>; anything else is left out. Pure."""
    parts = member.parts
    if len(parts) > 3 and parts[1:3] == ("data", "contents"):
        return PurePosixPath(*parts[3:])
    return None


@dataclass
class HydroshareFetcher(DataFetcher):
    display = "HydroShare"
    poll_seconds: float = 10.0
    wait_seconds: float = 120.0

    @classmethod
    def from_settings(cls, settings: Any, git_policy: GitPolicy) -> "HydroshareFetcher":
        fetcher = cls([Site(settings.providers.hydroshare_url)], git_policy, cls.limits_from_settings(settings))
        fetcher.wait_seconds = settings.builder.hydroshare_bag_wait_seconds
        return fetcher

    async def _fetch(self, t: Transfer, repo: ResolvedRepo, workdir: Path) -> AsyncIterator[str]:
        resource = f"HydroShare resource {repo.ref.split('.v')[0]}"
        archive = workdir / f".binderflow-bag-{uuid.uuid4().hex}.zip"
        waited = 0.0
        yield f"Downloading the bag of {resource} ({repo.repo_url})"
        while True:
            async with t.open(repo.clone_url, f"the bag of {resource}") as resp:
                if resp.status == 200 and resp.content_type in _ZIP_TYPES:
                    size = await t.save(resp, archive, f"the bag of {resource}")
                    break
                if resp.status not in (200, 202):
                    raise t.status_error(resp.status, f"the bag of {resource}", repo.clone_url)
            if waited >= self.wait_seconds:
                raise BuildError(f"HydroShare took longer than {self.wait_seconds:g} s to prepare the bag of {resource}; try again later.")
            yield f"HydroShare is preparing the bag; asking again in {self.poll_seconds:g} s"
            await asyncio.sleep(self.poll_seconds)
            waited += self.poll_seconds
            t.check_deadline()
        yield f"Unpacking the bag ({human_size(size)})"
        staging = workdir / f".binderflow-extract-{uuid.uuid4().hex}"
        try:
            count = await asyncio.to_thread(extract_zip, archive, staging, self.limits, bag_contents, f"the bag of {resource}")
            if count == 0 and not any(staging.iterdir()):
                raise BuildError(f"The bag of {resource} has no files under data/contents/.")
            names = await asyncio.to_thread(move_contents, staging, workdir, False)
        finally:
            archive.unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
        yield f"Fetched {count} files: {', '.join(names[:12])}{' and more' if len(names) > 12 else ''}"
