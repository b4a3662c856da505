"""Entry point of the launcher service."""

from __future__ import annotations

import logging

from schemas import StartServer
from services.runtime.sealing import load_sealer
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings
from services.runtime.worker import Worker

from .backends import make_backend
from .handlers import LauncherHandlers
from .metrics import SERVERS_RUNNING, preset

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    backend = make_backend(settings)
    adopted = await backend.adopt()
    if adopted:
        log.info("adopted %d running servers", adopted)
    SERVERS_RUNNING.set(backend.running)
    async with ServiceRuntime("launcher", settings, settings.launcher.http_port) as rt:
        preset()
        handlers = LauncherHandlers(rt.publisher, backend, load_sealer(settings))
        rt.spawn(handlers.cull_forever(settings.launcher.cull_interval_seconds, rt.stopping))
        worker = Worker(
            rt.js, rt.subjects, StartServer, handlers.handle, handlers.give_up, settings.launcher.max_concurrent_starts, settings.ack_wait_seconds
        )
        try:
            await worker.run(rt.stopping)
        finally:
            # Servers do not outlive their launcher: `binderflow up` stopping stops them.
            await backend.stop_all()
