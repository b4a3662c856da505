"""Records of the Jupyter server processes the local launcher started on this host.

Each server's record is `<data>/servers/<launch_id>/server.json`: a restarted
launcher adopts the servers still running from them, and `binderflow up` stops
any a killed launcher left behind. Both the launcher's local backend and `up`
use this module, which is why it lives below both.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from datetime import datetime
from pathlib import Path

import msgspec

__all__ = ["ServerRecord", "is_alive", "kill_group", "terminate", "read_records", "stop_recorded_servers"]


class ServerRecord(msgspec.Struct, frozen=True, kw_only=True):
    launch_id: str
    pid: int
    port: int
    url: str
    token: str
    image: str
    started_at: datetime


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def terminate(pid: int, grace_seconds: float = 5.0) -> None:
    kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and is_alive(pid):
        await asyncio.sleep(0.1)
    if is_alive(pid):
        kill_group(pid, signal.SIGKILL)


def read_records(servers_path: Path) -> list[tuple[Path, ServerRecord]]:
    records: list[tuple[Path, ServerRecord]] = []
    if not servers_path.is_dir():
        return records
    for record_file in servers_path.glob("*/server.json"):
        try:
            records.append((record_file.parent, msgspec.json.decode(record_file.read_bytes(), type=ServerRecord)))
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            continue
    return records


def stop_recorded_servers(servers_path: Path) -> int:
    """Stop every server recorded under `servers_path` (synchronous, for shutdown paths)."""
    stopped = 0
    for directory, record in read_records(servers_path):
        if is_alive(record.pid):
            kill_group(record.pid, signal.SIGTERM)
            stopped += 1
    deadline = time.monotonic() + 5
    for directory, record in read_records(servers_path):
        while is_alive(record.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_alive(record.pid):
            kill_group(record.pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)
    return stopped
