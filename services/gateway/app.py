"""The gateway's HTTP surface: BinderHub's /build event stream, /health and /metrics.

The gateway does not orchestrate. It publishes a launch request, subscribes to
that launch's subject and forwards every phase event as Server-Sent Events until
`ready` or `failed`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from schemas import PHASES, TERMINAL_PHASES, AnyPhaseEvent, LaunchRequest, LaunchRequested, ResolveRef, ServerReady, Subjects, event_to_wire
from services.runtime.bus import EventPublisher
from services.runtime.service import metrics_response, new_id
from services.runtime.settings import GatewaySettings, Settings

from .fanout import LaunchFanout, SlowWatcher
from .health import ServiceSightings
from .launch_metrics import LaunchMetrics, Metric, Observation
from .metrics import (
    BUILD_COUNT,
    BUILD_TIME,
    BUILDS_INPROGRESS,
    EVENTS_SENT,
    LAUNCH_COUNT,
    LAUNCH_REQUESTS,
    LAUNCH_TIME,
    LAUNCHES_INPROGRESS,
)
from .tokens import BuildTokenError, check_build_token, token_origin

__all__ = [
    "GatewayState",
    "make_app",
    "parse_build_path",
    "HeartbeatEventSource",
    "STATE_KEY",
    "Admitted",
    "Refused",
    "admit_build_request",
    "failed_event_response",
    "record_observations",
]

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


@dataclass(frozen=True)
class Admitted:
    """A /build request may go ahead."""

    build_only: bool = False
    have_build_token: bool = False


@dataclass(frozen=True)
class Refused:
    """A /build request is refused before anything is published: one `failed` event says why."""

    status_code: int
    message: str


def admit_build_request(
    gateway: GatewaySettings, provider: str, raw_spec: str, query: Mapping[str, str], origin: str, now: float
) -> Admitted | Refused:
    """Whether a /build request may start a launch, by BinderHub's rules. Pure.

    - `build_token`: checked when present (audience "<provider>/<raw spec>", the
      spec exactly as in the URL, and the request's origin); an invalid one is
      refused with 403 "Invalid build token". Without one the request goes ahead
      unless `require_build_token` is set (binderflow's addition; BinderHub only
      rate-limits such requests). Tokens are off when no secret is configured.
    - `build_only=true` needs the API-only mode (`enable_api_only_mode`, which
      `require_build_only` implies); otherwise 400, with BinderHub's message.
      `require_build_only` (binderflow's addition) refuses requests without it.
    """
    token = query.get("build_token") or ""
    have_token = False
    if token and gateway.build_token_secret:
        try:
            check_build_token(token, gateway.build_token_secret, f"{provider}/{raw_spec}", origin, now)
        except BuildTokenError as exc:
            return Refused(403, str(exc))
        have_token = True
    if gateway.require_build_token and not have_token:
        if not gateway.build_token_secret:
            return Refused(500, "This Binder requires build tokens but has no gateway.build_token_secret to check them with")
        return Refused(
            403,
            f"A build token is required to build here: open the launch link v2/{provider}/{raw_spec} on this Binder, which provides one",
        )
    build_only = (query.get("build_only") or "").strip().lower() == "true"
    if build_only and not (gateway.enable_api_only_mode or gateway.require_build_only):
        return Refused(
            400,
            "Building but not launching is not permitted when the API only mode was not enabled "
            "(gateway.enable_api_only_mode is false)",
        )
    if gateway.require_build_only and not build_only:
        return Refused(
            400,
            "Launching is not permitted here: this Binder only builds (gateway.require_build_only is true); "
            "ask for build_only=true",
        )
    return Admitted(build_only=build_only, have_build_token=have_token)


def failed_event_response(status_code: int, message: str) -> web.Response:
    """One `failed` event with the HTTP status it stands for, as BinderHub answers an event stream it refuses.

    The response itself is 200: an EventSource cannot read the body of an error
    response, so the reason travels in the event.
    """
    event = {"phase": "failed", "status_code": status_code, "message": message if message.endswith("\n") else message + "\n"}
    return web.Response(
        text=f"data: {json.dumps(event)}\n\n",
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def record_observations(observations: list[Observation]) -> None:
    """Record what the launch-metrics state machine says on BinderHub's Prometheus metrics."""
    for o in observations:
        if o.metric is Metric.BUILD_TIME:
            BUILD_TIME.labels(**o.labels).observe(o.value)
        elif o.metric is Metric.BUILD_COUNT:
            BUILD_COUNT.labels(**o.labels).inc(o.value)
        elif o.metric is Metric.BUILDS_INPROGRESS:
            BUILDS_INPROGRESS.inc(o.value)
        elif o.metric is Metric.LAUNCH_TIME:
            LAUNCH_TIME.labels(**o.labels).observe(o.value)
        elif o.metric is Metric.LAUNCH_COUNT:
            LAUNCH_COUNT.labels(**o.labels).inc(o.value)
        elif o.metric is Metric.LAUNCHES_INPROGRESS:
            LAUNCHES_INPROGRESS.inc(o.value)


def _wire(event: AnyPhaseEvent, build_only: bool) -> str:
    text = event_to_wire(event)
    if build_only and isinstance(event, ServerReady):
        # BinderHub's build-only `ready` names the image as `imageName`.
        data = json.loads(text)
        data.setdefault("imageName", event.image)
        text = json.dumps(data)
    return text


async def build(request: web.Request) -> web.StreamResponse:
    state: GatewayState = request.app[_STATE_KEY]  # type: ignore[assignment]
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise web.HTTPBadRequest(text="Only text/event-stream is supported at /build/; send Accept: text/event-stream\n")
    parsed = parse_build_path(request.rel_url.raw_path)
    assert parsed is not None
    provider, raw_spec = parsed
    # As BinderHub: trailing slashes are not part of the spec, but the build
    # token's audience (checked below) is the spec exactly as in the URL.
    spec = raw_spec.rstrip("/")
    LAUNCH_REQUESTS.labels(provider if provider in _KNOWN_PROVIDERS else "other").inc()
    admission = admit_build_request(
        state.settings.gateway,
        provider,
        raw_spec,
        request.rel_url.query,
        token_origin(request.headers.get("Origin"), request.host),
        time.time(),
    )
    if isinstance(admission, Refused):
        log.info("refused /build/%s/%s: %s", provider, raw_spec, admission.message)
        return failed_event_response(admission.status_code, admission.message)
    from .api import provider_name, repo_url_for

    launch_id = new_id()
    launch_request = LaunchRequest(
        provider=provider or "-",
        spec=spec or "-",
        launch_host=_launch_host(request, state.public_url),
        origin=request.headers.get("Origin", "") or request.host,
        build_only=admission.build_only,
    )
    tracker = LaunchMetrics(provider_name(provider), repo_url_for(provider, spec, state.settings.providers))
    watcher = await state.fanout.watch(launch_id)
    try:
        await state.publisher.event(
            LaunchRequested(
                launch_id=launch_id,
                event_id=f"{launch_id}.gateway.requested",
                timestamp=datetime.now(timezone.utc),
                provider=launch_request.provider,
                spec=launch_request.spec,
                origin=urllib.parse.urlsplit(launch_request.launch_host).netloc,
                request_origin=request.headers.get("Origin", ""),
                build_token=admission.have_build_token,
                build_only=admission.build_only,
            )
        )
        command = ResolveRef(command_id=f"{launch_id}.resolve", launch_id=launch_id, issued_at=datetime.now(timezone.utc), request=launch_request)
        await state.publisher.command(state.subjects.resolve_commands, command)
        log.info("launch %s requested: %s/%s%s", launch_id, provider, spec, " (build only)" if admission.build_only else "")
        interval = state.heartbeat_interval_seconds if state.heartbeat_interval_seconds > 0 else 10**9
        response = HeartbeatEventSource(ping_interval=interval, headers={"X-Binderflow-Launch-Id": launch_id, "X-Accel-Buffering": "no"})
        await response.prepare(request)
        async with response:
            try:
                async for event in watcher:
                    record_observations(tracker.on_event(event.phase, time.monotonic()))
                    await response.send(_wire(event, admission.build_only))
                    EVENTS_SENT.labels(event.phase).inc()
                    if event.phase in TERMINAL_PHASES:
                        break
            except SlowWatcher:
                log.warning("launch %s: client too slow, stream closed", launch_id)
            response.stop_streaming()
        return response
    finally:
        record_observations(tracker.on_close())
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
