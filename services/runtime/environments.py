"""The environment store: where built environments live, keyed by environment name.

The local store is a directory per environment under the data directory. An
environment counts as built only once its completion marker exists; the marker is
written last, after an fsync, so a failed or killed build never leaves something
that counts as built.

    <root>/<name>/venv/                     the Python environment (JupyterLab inside)
    <root>/<name>/repo/                     the repository at the built commit
    <root>/<name>/binderflow-environment.json   metadata; its presence marks completion
    <root>/<name>.lock                      held while a build writes <name>/
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import shutil
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Iterator, Protocol

import msgspec

__all__ = ["EnvironmentStore", "LocalEnvironmentStore", "EnvironmentMetadata", "is_valid_environment_name"]

MARKER = "binderflow-environment.json"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,126}$")


def is_valid_environment_name(name: str) -> bool:
    """Names come from the resolver; this keeps a hostile one from escaping the store."""
    return bool(_NAME_RE.match(name))


class EnvironmentMetadata(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    repo_url: str
    resolved_ref: str
    python: str
    built_at: str
    build_seconds: float
    # Path of the `start` script relative to repo/, empty if the repository has none.
    start_script: str = ""
    binder_dir: str = ""
    # The Python installation the environment's interpreter links to, shown
    # read-only to its servers' sandboxes; empty: under /usr, or built before
    # this was recorded (then the launcher's own Python's).
    python_prefix: str = ""


class EnvironmentStore(Protocol):
    async def exists(self, name: str) -> bool:
        """True if the environment `name` is completely built and can be launched."""
        ...


class LocalEnvironmentStore:
    """Environments as directories on this host."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, name: str) -> Path:
        if not is_valid_environment_name(name):
            raise ValueError(f"invalid environment name {name!r}")
        return self.root / name

    def venv(self, name: str) -> Path:
        return self.path(name) / "venv"

    def repo(self, name: str) -> Path:
        return self.path(name) / "repo"

    def is_complete(self, name: str) -> bool:
        return (self.path(name) / MARKER).is_file()

    async def exists(self, name: str) -> bool:
        return self.is_complete(name)

    def metadata(self, name: str) -> EnvironmentMetadata:
        return msgspec.json.decode((self.path(name) / MARKER).read_bytes(), type=EnvironmentMetadata)

    @contextmanager
    def building(self, name: str) -> Iterator[Path]:
        """Hold the build lock of `name` and yield an empty directory to build in.

        Blocks (in a thread) while another process builds the same name. Leftovers of
        a failed or killed build are removed first.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.path(name)
        with open(self.root / f"{name}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not (target / MARKER).is_file() and target.exists():
                    shutil.rmtree(target)
                target.mkdir(parents=True, exist_ok=True)
                yield target
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def mark_complete(self, name: str, metadata: EnvironmentMetadata) -> None:
        """Write the marker atomically: after this the environment counts as built."""
        target = self.path(name)
        tmp = target / (MARKER + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(msgspec.json.format(msgspec.json.encode(metadata)))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target / MARKER)
        dir_fd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    async def lock_building(self, name: str) -> tuple[AbstractContextManager[Path], Path]:
        """Async wrapper: enter building() in a thread so the event loop never blocks."""
        cm = self.building(name)
        path = await asyncio.to_thread(cm.__enter__)
        return cm, path
