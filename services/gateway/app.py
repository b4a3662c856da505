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
import re
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Awaitable, Callable, Mapping

import msgspec

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from schemas import FACT_KINDS, TERMINAL_PHASES, AnyPhaseEvent, LaunchRequest, LaunchRequested, ResolveRef, ServerReady, Subjects
from services.runtime import telemetry
from services.runtime.sealing import SealError, TokenSealer
from services.runtime.bus import EventPublisher
from services.runtime.service import metrics_response, new_id
from services.runtime.settings import GatewaySettings, Settings

from .fanout import EventLogUnavailable, LaunchFanout, SlowWatcher, launch_exists
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
        nats_connected: Callable[[], bool],
        public_url: str = "",
        heartbeat_interval_seconds: float = 25.0,
        settings: "Settings | None" = None,
        sealer: TokenSealer | None = None,
    ) -> None:
        # Unseals ready tokens and signs watch keys; None: tokens stay sealed, no resume.
        self.sealer = sealer
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


def client_event_json(event: ServerReady | AnyPhaseEvent, build_only: bool, sealer: TokenSealer | None) -> str:
    """The JSON a client receives for one logged phase event (BinderHub's shape).

    The log holds the ready event's token sealed; the client gets it in `token`.
    """
    if isinstance(event, ServerReady) and event.token_sealed:
        token = ""
        if sealer is not None:
            try:
                token = sealer.unseal(event.token_sealed, event.launch_id)
            except SealError:
                log.error("launch %s: the server token does not open with this gateway's key (events.token_key)", event.launch_id)
        event = msgspec.structs.replace(event, token=token)
    data = msgspec.to_builtins(event)
    if isinstance(event, ServerReady):
        data.pop("token_sealed", None)
        if build_only:
            # BinderHub's build-only `ready` names the image as `imageName`.
            data.setdefault("imageName", event.image)
    return json.dumps(data)


def sse_event_id(launch_id: str, seq: int, watch_key: str) -> str:
    """The SSE id of an event: which launch, where in the log, and the key to resume it."""
    return f"{launch_id}:{seq}:{watch_key}"


@dataclass(frozen=True)
class ResumePoint:
    launch_id: str
    after_seq: int
    watch_key: str


def parse_resume_point(last_event_id: str | None) -> ResumePoint | None:
    """The launch and position named by a Last-Event-ID header, or None if it is not one of ours. Pure."""
    if not last_event_id:
        return None
    parts = last_event_id.strip().split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not _LAUNCH_ID_RE.match(parts[0]):
        return None
    return ResumePoint(parts[0], int(parts[1]), parts[2])


_LAUNCH_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{7,63}\Z")


async def _stream_launch(
    request: web.Request,
    state: GatewayState,
    launch_id: str,
    after_seq: int,
    build_only: bool,
    tracker: LaunchMetrics | None,
    publish_first: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Send a launch's client-visible events after `after_seq` as SSE, until ready or failed."""
    watch_key = state.sealer.watch_key(launch_id) if state.sealer else ""
    watcher = await state.fanout.watch(launch_id, after_seq)
    try:
        if publish_first is not None:
            await publish_first()
        interval = state.heartbeat_interval_seconds if state.heartbeat_interval_seconds > 0 else 10**9
        response = HeartbeatEventSource(
            ping_interval=interval,
            headers={
                "X-Binderflow-Launch-Id": launch_id,
                "X-Binderflow-Watch-Url": f"/launches/{launch_id}/events?key={watch_key}",
                "X-Accel-Buffering": "no",
            },
        )
        await response.prepare(request)
        retry_ms: int | None = state.settings.events.client_retry_ms
        async with response:
            try:
                async for item in watcher:
                    event = item.event
                    if event.phase in FACT_KINDS:
                        if isinstance(event, LaunchRequested):
                            build_only = event.build_only
                        continue
                    if tracker is not None:
                        record_observations(tracker.on_event(event.phase, time.monotonic()))
                    await response.send(
                        client_event_json(event, build_only, state.sealer),  # type: ignore[arg-type]
                        id=sse_event_id(launch_id, item.seq, watch_key),
                        retry=retry_ms,
                    )
                    retry_ms = None  # once is enough
                    EVENTS_SENT.labels(event.phase).inc()
                    if event.phase in TERMINAL_PHASES:
                        break
            except SlowWatcher:
                log.warning("launch %s: client too slow, stream closed", launch_id)
            response.stop_streaming()
        return response
    finally:
        if tracker is not None:
            record_observations(tracker.on_close())
        await watcher.close()


async def _resume(request: web.Request, state: GatewayState, point: ResumePoint) -> web.StreamResponse | None:
    """Continue an existing launch's stream from `point`, or None when it cannot be resumed."""
    if state.sealer is None or not state.sealer.check_watch_key(point.launch_id, point.watch_key):
        return None
    try:
        if not await launch_exists(state.fanout.js, state.subjects, point.launch_id):
            return None
    except EventLogUnavailable as exc:
        log.warning("launch %s: cannot resume, the event log does not answer: %s", point.launch_id, exc)
        return failed_event_response(503, "The event log is not answering right now; reconnect in a moment to resume this launch")
    log.info("launch %s: client resumes after %d", point.launch_id, point.after_seq)
    return await _stream_launch(request, state, point.launch_id, point.after_seq, False, None)


async def build(request: web.Request) -> web.StreamResponse:
    state: GatewayState = request.app[_STATE_KEY]  # type: ignore[assignment]
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise web.HTTPBadRequest(text="Only text/event-stream is supported at /build/; send Accept: text/event-stream\n")
    parsed = parse_build_path(request.rel_url.raw_path)
    assert parsed is not None
    provider, raw_spec = parsed
    # A browser's EventSource reconnects to the same URL with the last id it saw:
    # continue that launch instead of starting another.
    point = parse_resume_point(request.headers.get("Last-Event-ID"))
    if point is not None:
        resumed = await _resume(request, state, point)
        if resumed is not None:
            return resumed
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

    async def publish_launch() -> None:
        now = datetime.now(timezone.utc)
        await state.publisher.event(
            LaunchRequested(
                launch_id=launch_id,
                event_id=f"{launch_id}.gateway.requested",
                timestamp=now,
                provider=launch_request.provider,
                spec=launch_request.spec,
                origin=urllib.parse.urlsplit(launch_request.launch_host).netloc,
                request_origin=request.headers.get("Origin", ""),
                build_token=admission.have_build_token,
                build_only=admission.build_only,
            )
        )
        command = ResolveRef(command_id=f"{launch_id}.resolve", launch_id=launch_id, issued_at=now, request=launch_request)
        await state.publisher.command(state.subjects.resolve_commands, command)
        log.info("launch %s requested: %s/%s%s", launch_id, provider, spec, " (build only)" if admission.build_only else "")

    with telemetry.launch_span(launch_id, provider, spec):
        return await _stream_launch(request, state, launch_id, 0, admission.build_only, tracker, publish_launch)


async def attach(request: web.Request) -> web.StreamResponse:
    """GET /launches/<launch_id>/events?key=...: watch a launch already under way, from its
    first event (or after Last-Event-ID), without starting another."""
    state: GatewayState = request.app[_STATE_KEY]  # type: ignore[assignment]
    launch_id = request.match_info["launch_id"]
    if not _LAUNCH_ID_RE.match(launch_id):
        raise web.HTTPNotFound(text=f"No launch {launch_id!r}\n")
    key = request.rel_url.query.get("key", "")
    point = parse_resume_point(request.headers.get("Last-Event-ID"))
    if point is not None and point.launch_id == launch_id:
        key = key or point.watch_key
    if state.sealer is None or not state.sealer.check_watch_key(launch_id, key):
        raise web.HTTPForbidden(text="This launch's watch key is missing or wrong: use the X-Binderflow-Watch-Url its stream gave\n")
    try:
        exists = await launch_exists(state.fanout.js, state.subjects, launch_id)
    except EventLogUnavailable as exc:
        log.warning("launch %s: cannot attach, the event log does not answer: %s", launch_id, exc)
        raise web.HTTPServiceUnavailable(text="The event log is not answering right now; try again in a moment\n", headers={"Retry-After": "2"})
    if not exists:
        raise web.HTTPNotFound(text=f"No launch {launch_id} in the event log (never started, or older than its retention)\n")
    after = point.after_seq if point is not None and point.launch_id == launch_id else 0
    return await _stream_launch(request, state, launch_id, after, False, None)


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
    app.router.add_get("/launches/{launch_id}/events", attach)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_response)
    # BinderHub's HTTP API (api.py) and the web UI (web.py) add their own routes.
    from .api import add_api_routes
    from .logs import add_log_routes
    from .web import add_web_routes

    add_api_routes(app)
    add_log_routes(app)
    add_web_routes(app)
    return app
