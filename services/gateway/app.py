"""The gateway's HTTP surface: BinderHub's /build event stream, /health and /metrics.

The gateway does not orchestrate. It publishes a launch request, subscribes to
that launch's subject and forwards every phase event as Server-Sent Events until
`ready` or `failed`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import urllib.parse
from datetime import datetime, timezone

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from schemas import TERMINAL_PHASES, LaunchRequest, ResolveRef, Subjects, event_to_wire
from services.runtime.bus import EventPublisher
from services.runtime.service import metrics_response, new_id
from services.runtime.settings import Settings

from .fanout import LaunchFanout, SlowWatcher
from .health import ServiceSightings
from .metrics import EVENTS_SENT, LAUNCH_REQUESTS

__all__ = ["GatewayState", "make_app", "parse_build_path", "HeartbeatEventSource", "STATE_KEY"]

log = logging.getLogger(__name__)

# Metric label values are bounded: any other prefix counts as "other".
_KNOWN_PROVIDERS = frozenset({"gh", "gist", "gl", "git", "zenodo", "figshare", "hydroshare", "dataverse", "ckan", "doi"})
STATE_KEY = web.AppKey("gateway_state", object)
_STATE_KEY = STATE_KEY


class HeartbeatEventSource(EventSourceResponse):
    """An SSE response whose keep-alive comment is `:heartbeat`, as BinderHub sends."""

    async def _ping(self) -> None:
        message = f":heartbeat{self._sep}{self._sep}".encode()
        while True:
            await asyncio.sleep(self._ping_interval)
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self.write(message)
            except TimeoutError:
                self._abort_transport()
                break
            except (ConnectionResetError, RuntimeError):
                break


class GatewayState:
    def __init__(
        self,
        subjects: Subjects,
        publisher: EventPublisher,
        fanout: LaunchFanout,
        sightings: ServiceSightings,
        nats_connected: "callable[[], bool]",  # type: ignore[valid-type]
        public_url: str = "",
        heartbeat_interval_seconds: float = 25.0,
        settings: "Settings | None" = None,
    ) -> None:
        self.settings = settings or Settings()
        self.subjects = subjects
        self.publisher = publisher
        self.fanout = fanout
        self.sightings = sightings
        self.nats_connected = nats_connected
        self.public_url = public_url
        self.heartbeat_interval_seconds = heartbeat_interval_seconds


def parse_build_path(raw_path: str, prefix: str = "/build/") -> tuple[str, str] | None:
    """(provider, spec) from the raw, still percent-encoded request path, or None.

    The spec keeps its percent-encoding: providers decode their own parts (a git
    URL in a spec is itself percent-encoded, and '%2F' must not become '/').
    """
    if not raw_path.startswith(prefix):
        return None
    rest = raw_path[len(prefix):]
    provider, sep, spec = rest.partition("/")
    if not sep:
        return (urllib.parse.unquote(provider), "")
    return urllib.parse.unquote(provider), spec


def _launch_host(request: web.Request, public_url: str) -> str:
    if public_url:
        return public_url if public_url.endswith("/") else public_url + "/"
    return f"{request.scheme}://{request.host}/"


async def build(request: web.Request) -> web.StreamResponse:
    state: GatewayState = request.app[_STATE_KEY]  # type: ignore[assignment]
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise web.HTTPBadRequest(text="Only text/event-stream is supported at /build/; send Accept: text/event-stream\n")
    parsed = parse_build_path(request.rel_url.raw_path)
    assert parsed is not None
    provider, spec = parsed
    launch_id = new_id()
    LAUNCH_REQUESTS.labels(provider if provider in _KNOWN_PROVIDERS else "other").inc()
    launch_request = LaunchRequest(
        provider=provider or "-",
        spec=spec or "-",
        launch_host=_launch_host(request, state.public_url),
        origin=request.headers.get("Origin", "") or request.host,
    )
    watcher = await state.fanout.watch(launch_id)
    try:
        command = ResolveRef(command_id=f"{launch_id}.resolve", launch_id=launch_id, issued_at=datetime.now(timezone.utc), request=launch_request)
        await state.publisher.command(state.subjects.resolve_commands, command)
        log.info("launch %s requested: %s/%s", launch_id, provider, spec)
        interval = state.heartbeat_interval_seconds if state.heartbeat_interval_seconds > 0 else 10**9
        response = HeartbeatEventSource(ping_interval=interval, headers={"X-Binderflow-Launch-Id": launch_id, "X-Accel-Buffering": "no"})
        await response.prepare(request)
        async with response:
            try:
                async for event in watcher:
                    await response.send(event_to_wire(event))
                    EVENTS_SENT.labels(event.phase).inc()
                    if event.phase in TERMINAL_PHASES:
                        break
            except SlowWatcher:
                log.warning("launch %s: client too slow, stream closed", launch_id)
            response.stop_streaming()
        return response
    finally:
        await watcher.close()


async def health(request: web.Request) -> web.Response:
    state: GatewayState = request.app[_STATE_KEY]  # type: ignore[assignment]
    services = state.sightings.report()
    nats_ok = state.nats_connected()
    ok = nats_ok and all(s["ok"] for s in services.values())
    body = {
        "status": "ok" if ok else "unhealthy",
        "service": "gateway",
        "pid": os.getpid(),
        "checks": {"nats": nats_ok, "services": services, "launches_watched": state.fanout.launches_watched},
    }
    return web.json_response(body, status=200 if ok else 503)


def make_app(state: GatewayState) -> web.Application:
    app = web.Application()
    app[_STATE_KEY] = state
    app.router.add_get("/build/{tail:.+}", build)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_response)
    # BinderHub's HTTP API (api.py) and the web UI (web.py) add their own routes.
    from .api import add_api_routes
    from .web import add_web_routes

    add_api_routes(app)
    add_web_routes(app)
    return app
