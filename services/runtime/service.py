"""Service lifecycle: set up tracing, connect, set up streams, serve /health and /metrics, beat, stop on a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from datetime import datetime, timezone
from typing import Awaitable, Callable

import msgspec
from aiohttp import web
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas import Heartbeat, Subjects

from . import telemetry
from .bus import EventPublisher, connect, ensure_streams
from .metrics import SERVICE_UP, preset_worker_labels
from .settings import Settings

__all__ = ["ServiceRuntime", "setup_logging", "utcnow", "new_id", "metrics_response"]

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def setup_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format=f"%(asctime)s {service:<8} %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiohttp logs every request at INFO; that drowns the pipeline's own story.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def metrics_response(request: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return resp


class ServiceRuntime:
    """What every service process holds: settings, NATS, JetStream, a publisher, a stop event."""

    def __init__(self, service: str, settings: Settings, http_port: int | None) -> None:
        self.service = service
        self.settings = settings
        self.subjects = Subjects(settings.subject_prefix)
        self.instance = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stopping = asyncio.Event()
        self._http_port = http_port
        self.http_port = 0
        self.nc: NATS
        self.js: JetStreamContext
        self.publisher: EventPublisher
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.health_checks: list[Callable[[], Awaitable[dict[str, object]]]] = []
        self._tracer_provider: TracerProvider | None = None

    async def __aenter__(self) -> "ServiceRuntime":
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        self._tracer_provider = telemetry.setup_tracing(self.settings, self.service, self.instance)
        self.nc = await connect(
            self.settings.nats_url, f"binderflow-{self.service}-{self.instance}", self.settings.nats_user, self.settings.nats_password
        )
        self.js = self.nc.jetstream()
        await ensure_streams(self.js, self.subjects, self.settings)
        self.publisher = EventPublisher(self.js, self.subjects)
        preset_worker_labels(self.service)
        SERVICE_UP.labels(self.service).set(1)
        if self._http_port is not None:
            await self._start_http(self._http_port)
        self._tasks.append(asyncio.create_task(self._beat()))
        log.info("%s %s started (nats %s, http port %s)", self.service, self.instance, self.settings.nats_url, self.http_port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        SERVICE_UP.labels(self.service).set(0)
        for task in self._tasks:
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        try:
            await self.nc.drain()
        except Exception:
            pass
        # Last, so the spans of commands finished while draining are exported too.
        await telemetry.shutdown_tracing(self._tracer_provider)
        log.info("%s %s stopped", self.service, self.instance)

    async def _start_http(self, port: int) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", metrics_response)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, port)
        await site.start()
        self.http_port = self._runner.addresses[0][1]

    async def _health(self, request: web.Request) -> web.Response:
        checks: dict[str, object] = {"nats": self.nc.is_connected}
        for check in self.health_checks:
            checks.update(await check())
        ok = bool(checks["nats"])
        body = {"status": "ok" if ok else "unhealthy", "service": self.service, "instance": self.instance, "pid": os.getpid(), "checks": checks}
        return web.json_response(body, status=200 if ok else 503)

    async def _beat(self) -> None:
        subject = self.subjects.heartbeat(self.service)
        while True:
            beat = Heartbeat(service=self.service, instance=self.instance, pid=os.getpid(), http_port=self.http_port, at=utcnow())
            try:
                await self.nc.publish(subject, msgspec.json.encode(beat))
            except Exception as exc:
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(self.settings.heartbeat_seconds)

    def spawn(self, coro: Awaitable[None]) -> None:
        """Run a background task for the life of the service."""
        self._tasks.append(asyncio.ensure_future(coro))
