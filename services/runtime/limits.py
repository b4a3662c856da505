"""Resource limits for the process trees binderflow starts (build steps, Jupyter servers).

A limit on a whole tree needs a control group: the `pids` controller stops a fork
bomb, the `memory` controller bounds what all of a build's processes use together
and tells afterwards whether the kernel killed something for lack of memory.
Where binderflow may make control groups (root, or a delegated cgroup v2 subtree)
each tree gets its own, under the service's own group. Where it may not, the
limits fall back to per-process rlimits, which bound memory per process and
cannot bound the number of processes (the kernel counts those per user, and a
sandbox run by root is exempt): `describe()` says which is in force, and the
services log it at start.

Every process also gets RLIMIT_FSIZE (no single file larger than the limit) and
RLIMIT_CORE 0 (no core dumps of other people's processes on the disk).
"""

from __future__ import annotations

import logging
import os
import resource
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

__all__ = ["ResourceLimits", "LimitGroup", "ControlGroups", "control_groups", "preexec_for"]

log = logging.getLogger(__name__)

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ResourceLimits:
    """What one process tree may use; 0 means no limit."""

    memory_bytes: int = 0
    max_processes: int = 0
    max_file_bytes: int = 0

    def describe(self) -> str:
        def size(n: int) -> str:
            return f"{n / 1024**3:.1f} GiB" if n else "unlimited"

        processes = str(self.max_processes) if self.max_processes else "unlimited"
        files = f"files up to {size(self.max_file_bytes)}" if self.max_file_bytes else "files of any size"
        return f"memory {size(self.memory_bytes)}, {processes} processes, {files}"


def _own_paths() -> dict[str, str]:
    """Controller name ("" for cgroup v2) -> this process's group path, from /proc/self/cgroup."""
    paths: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return paths
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller] = parts[2]
    return paths


@dataclass(frozen=True)
class ControlGroups:
    """Where this host lets binderflow make groups: one parent directory per controller.

    cgroup v1 has a hierarchy per controller (`pids`, `memory`); cgroup v2 one
    hierarchy for both, keyed "" here.
    """

    parents: dict[str, Path]

    @property
    def unified(self) -> bool:
        return "" in self.parents

    def describe(self) -> str:
        kind = "cgroup v2" if self.unified else "cgroup v1"
        return f"{kind} groups under {', '.join(str(p) for p in sorted(set(self.parents.values())))}"

    def new_group(self, name: str, limits: ResourceLimits) -> "LimitGroup":
        """Make the group `name` (removing a leftover of the same name) with `limits`."""
        directories: dict[str, Path] = {}
        for controller, parent in self.parents.items():
            directory = parent / name
            _remove_group_dir(directory)
            directory.mkdir(parents=True, exist_ok=True)
            directories[controller] = directory
        group = LimitGroup(directories)
        group._apply(limits)
        return group

    def remove_empty(self, prefix: str) -> None:
        """Remove groups named `prefix`... that no process uses any more (left by a killed
        service); groups still in use refuse to go, so other services' are safe."""
        for parent in set(self.parents.values()):
            for child in parent.glob(f"{prefix}*"):
                if child.is_dir():
                    _remove_group_dir(child)

    def existing_group(self, name: str) -> "LimitGroup":
        return LimitGroup({c: parent / name for c, parent in self.parents.items()})


def _probe(parent: Path, files: tuple[str, ...]) -> bool:
    """True if a child group can be made under `parent` and has `files` (the limits)."""
    probe = parent / f"probe-{secrets.token_hex(4)}"
    try:
        probe.mkdir(parents=True)
    except OSError:
        return False
    try:
        return all((probe / f).exists() for f in files)
    finally:
        try:
            probe.rmdir()
        except OSError:
            pass


@lru_cache(maxsize=1)
def control_groups() -> ControlGroups | None:
    """The control groups binderflow can make on this host, or None (rlimits only)."""
    own = _own_paths()
    found: ControlGroups | None = None
    if (_CGROUP_ROOT / "cgroup.controllers").is_file() and "" in own:
        # cgroup v2: the controllers must be enabled for our children.
        parent = _CGROUP_ROOT / own[""].lstrip("/") / "binderflow"
        try:
            parent.mkdir(exist_ok=True)
            (parent / "cgroup.subtree_control").write_text("+pids +memory")
        except OSError:
            pass
        if _probe(parent, ("pids.max", "memory.max")):
            found = ControlGroups({"": parent})
    else:
        parents = {}
        for controller, files in (("pids", ("pids.max",)), ("memory", ("memory.limit_in_bytes",))):
            if controller in own and (_CGROUP_ROOT / controller).is_dir():
                parent = _CGROUP_ROOT / controller / own[controller].lstrip("/") / "binderflow"
                if _probe(parent, files):
                    parents[controller] = parent
        if len(parents) == 2:
            found = ControlGroups(parents)
    return found


def _remove_group_dir(directory: Path, wait_seconds: float = 0.0) -> bool:
    """rmdir a group; it only goes once its last process has gone, so retry for a while."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            directory.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


class LimitGroup:
    """The control group(s) of one process tree."""

    def __init__(self, directories: dict[str, Path]) -> None:
        self.directories = directories

    def _file(self, controller_v1: str, name_v1: str, name_v2: str) -> Path:
        if "" in self.directories:
            return self.directories[""] / name_v2
        return self.directories[controller_v1] / name_v1

    def _apply(self, limits: ResourceLimits) -> None:
        if limits.max_processes:
            self._file("pids", "pids.max", "pids.max").write_text(str(limits.max_processes))
        if limits.memory_bytes:
            self._file("memory", "memory.limit_in_bytes", "memory.max").write_text(str(limits.memory_bytes))
            if "" in self.directories:
                # No swap either, or the limit would only slow the tree down.
                try:
                    (self.directories[""] / "memory.swap.max").write_text("0")
                except OSError:
                    pass

    def join(self) -> None:
        """Move the calling process into the group (its children follow)."""
        pid = str(os.getpid())
        for directory in self.directories.values():
            with open(directory / "cgroup.procs", "w") as fh:
                fh.write(pid)

    def ran_out_of_memory(self) -> bool:
        """True if the kernel killed a process of this tree for lack of memory."""
        try:
            if "" in self.directories:
                events = (self.directories[""] / "memory.events").read_text()
            else:
                events = (self.directories["memory"] / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in events.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip() not in ("", "0"):
                return True
        return False

    def processes(self) -> list[int]:
        directory = next(iter(self.directories.values()))
        try:
            return [int(p) for p in (directory / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def remove(self, wait_seconds: float = 2.0) -> None:
        """Kill what is left in the group and remove it."""
        for pid in self.processes():
            try:
                os.kill(pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
        for directory in self.directories.values():
            if not _remove_group_dir(directory, wait_seconds):
                log.warning("could not remove control group %s", directory)


def preexec_for(limits: ResourceLimits, group: LimitGroup | None) -> Callable[[], None]:
    """What a child runs between fork and exec: join its group, set its rlimits."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if limits.max_file_bytes:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
        if group is not None:
            group.join()
        elif limits.memory_bytes:
            # Without a memory group: each process at most the whole tree's budget.
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))

    return apply
