"""The launcher's I/O edge: start a server, publish launching then ready (or failed)."""

from __future__ import annotations

import asyncio
import logging
import time

from schemas import StartServer
from services.runtime.bus import EventPublisher
from services.runtime.sealing import TokenSealer
from services.runtime.service import utcnow

from . import domain
from .backends import LaunchError, LauncherBackend
from .metrics import LAUNCH_SECONDS, LAUNCHES, SERVERS_CULLED, SERVERS_RUNNING, LaunchStatus

__all__ = ["LauncherHandlers"]

log = logging.getLogger(__name__)


class LauncherHandlers:
    def __init__(self, publisher: EventPublisher, backend: LauncherBackend, sealer: TokenSealer) -> None:
        self._publisher = publisher
        self._backend = backend
        self._sealer = sealer

    async def handle(self, command: StartServer) -> None:
        started = time.monotonic()
        await self._publisher.event(domain.launching(command, utcnow()))
        try:
            server = await self._backend.start(command.launch_id, command.repo, command.request)
        except LaunchError as exc:
            LAUNCHES.labels(LaunchStatus.FAILURE.value).inc()
            LAUNCH_SECONDS.labels(LaunchStatus.FAILURE.value).observe(time.monotonic() - started)
            log.info("launch %s failed: %s", command.launch_id, str(exc).splitlines()[0])
            await self._publisher.event(domain.launch_failed(command, str(exc), utcnow()))
            return
        LAUNCHES.labels(LaunchStatus.SUCCESS.value).inc()
        LAUNCH_SECONDS.labels(LaunchStatus.SUCCESS.value).observe(time.monotonic() - started)
        SERVERS_RUNNING.set(self._backend.running)
        sealed = self._sealer.seal(server.token, command.launch_id)
        await self._publisher.event(domain.ready(command, server, sealed, utcnow()))

    async def give_up(self, command: StartServer, error: BaseException) -> None:
        await self._publisher.event(domain.launch_failed(command, f"internal error in the launcher: {error}", utcnow()))

    async def cull_forever(self, interval_seconds: float, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), interval_seconds)
            except asyncio.TimeoutError:
                pass
            if stopping.is_set():
                return
            try:
                stopped = await self._backend.cull(utcnow())
            except Exception:
                log.exception("culling failed")
                continue
            SERVERS_CULLED.inc(len(stopped))
            SERVERS_RUNNING.set(self._backend.running)
