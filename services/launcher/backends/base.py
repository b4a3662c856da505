"""The launcher-backend protocol: start and stop Jupyter servers from built environments."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import msgspec

from schemas import LaunchRequest, ResolvedRepo
from services.runtime.settings import Settings

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
    """Runs Jupyter servers (BinderHub's launcher, JupyterHub's Spawner).

    Chosen by `launcher.backend`: a name in services.runtime.plugins.LAUNCHER_BACKENDS
    or a `module:Class` import string.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> "LauncherBackend":
        """The backend as configured."""
        ...

    @property
    def running(self) -> int:
        """How many servers this backend runs now (binderflow_launcher_servers_running)."""
        ...

    async def adopt(self) -> int:
        """Take over the servers a previous process of this launcher left running; returns how many.

        Called once, before the first start.
        """
        ...

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
