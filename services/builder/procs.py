"""Run a build command and hand each output line over as it appears."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import AsyncIterator, Callable, Mapping, Sequence

__all__ = ["stream_lines", "ProcessFailed"]


class ProcessFailed(Exception):
    def __init__(self, returncode: int, timed_out: bool = False) -> None:
        super().__init__(returncode)
        self.returncode = returncode
        self.timed_out = timed_out


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def stream_lines(
    cmd: Sequence[str],
    cwd: str,
    env: Mapping[str, str],
    timeout_seconds: float | None,
    preexec: Callable[[], None] | None = None,
) -> AsyncIterator[str]:
    """Yield the merged stdout/stderr lines of `cmd` while it runs.

    Raises ProcessFailed when it exits non-zero or outlives `timeout_seconds`.
    The command runs in its own process group, so stopping it (on timeout or
    cancellation) also stops whatever it started. `preexec` runs in the child
    before the command (resource limits).
    """
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec,
        limit=1024 * 1024,
    )
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_seconds if timeout_seconds else None
    try:
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise asyncio.TimeoutError
            try:
                raw = await asyncio.wait_for(proc.stdout.readline(), remaining)
            except ValueError:
                # A line longer than the limit: pass it on in pieces.
                raw = await proc.stdout.read(64 * 1024)
            if not raw:
                break
            yield raw.decode(errors="replace").rstrip("\r\n")
        remaining = None if deadline is None else max(0.1, deadline - loop.time())
        code = await asyncio.wait_for(proc.wait(), remaining)
    except asyncio.TimeoutError:
        _kill_group(proc)
        await proc.wait()
        raise ProcessFailed(-9, timed_out=True) from None
    except BaseException:
        _kill_group(proc)
        await proc.wait()
        raise
    if code != 0:
        raise ProcessFailed(code)
