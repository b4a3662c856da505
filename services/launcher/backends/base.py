"""The launcher-backend protocol: start and stop Jupyter servers from built environments."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

from schemas import LaunchRequest, ResolvedRepo

__all__ = ["LauncherBackend", "LaunchError", "RunningServer"]


class LaunchError(Exception):
    """The server could not be started; the message is for the person launching."""


class RunningServer(msgspec.Struct, frozen=True, kw_only=True):
    launch_id: str
    # Base URL of the server, ending in '/'.
    url: str
    token: str
    image: str
    started_at: datetime


class LauncherBackend(Protocol):
    async def start(self, launch_id: str, repo: ResolvedRepo, request: LaunchRequest) -> RunningServer:
        """Start a server for `launch_id` from environment `repo.image_name` and wait until it answers.

        Idempotent: a second call for the same launch returns the running server.
        Raises LaunchError when it cannot start or does not answer in time.
        """
        ...

    async def cull(self, now: datetime) -> list[str]:
        """Stop servers idle or older than allowed; return the launch ids stopped."""
        ...

    async def stop_all(self) -> None:
        """Stop every server this backend runs (used when the service shuts down)."""
        ...
