"""Launches over HTTP: `/build/<provider>/<spec>` starts one and streams it; `/launches/<id>/events` watches one.

The gateway does not orchestrate: a new launch is one fact (`requested`) and
one command (ResolveRef) on the bus, then the launch's events as they come.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from datetime import datetime, timezone

from aiohttp import web

from schemas import LaunchRequest, LaunchRequested, ResolveRef
from schemas.identity import command_id, is_launch_id, requested_id
from schemas.providers import PROVIDERS, provider_name, repo_url_for
from services.runtime import telemetry
from services.runtime.eventlog import EventLogUnavailable, launch_exists
from services.runtime.service import new_id

from .admission import Refused, admit_build_request
from .launch_metrics import LaunchMetrics
from .metrics import LAUNCH_REQUESTS
from .paths import absolute_base, parse_provider_path
from .sse import failed_event_response, parse_resume_point
from .state import state_of
from .streaming import resume_launch, stream_launch
from .tokens import token_origin

__all__ = ["add_launch_routes"]

log = logging.getLogger(__name__)


async def build(request: web.Request) -> web.StreamResponse:
    """GET /build/<provider>/<spec>: BinderHub's event stream of a new launch."""
    state = state_of(request)
    if "text/event-stream" not in request.headers.get("Accept", ""):
        raise web.HTTPBadRequest(text="Only text/event-stream is supported at /build/; send Accept: text/event-stream\n")
    parsed = parse_provider_path(request.rel_url.raw_path, "/build/")
    assert parsed is not None  # the route matched /build/
    provider, raw_spec = parsed
    # A browser's EventSource reconnects to the same URL with the last id it saw:
    # continue that launch instead of starting another.
    point = parse_resume_point(request.headers.get("Last-Event-ID"))
    if point is not None:
        resumed = await resume_launch(request, state, point)
        if resumed is not None:
            return resumed
    # As BinderHub: trailing slashes are not part of the spec, but the build
    # token's audience (checked below) is the spec exactly as in the URL.
    spec = raw_spec.rstrip("/")
    # Label values are bounded: any prefix the catalogue does not hold counts as "other".
    LAUNCH_REQUESTS.labels(provider if provider in PROVIDERS else "other").inc()
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

    launch_id = new_id()
    launch_request = LaunchRequest(
        provider=provider or "-",
        spec=spec or "-",
        launch_host=absolute_base(request, state.settings.gateway),
        origin=request.headers.get("Origin", "") or request.host,
        build_only=admission.build_only,
    )
    tracker = LaunchMetrics(provider_name(provider), repo_url_for(provider, spec, state.settings.providers))

    async def publish_launch() -> None:
        now = datetime.now(timezone.utc)
        await state.publisher.event(
            LaunchRequested(
                launch_id=launch_id,
                event_id=requested_id(launch_id),
                timestamp=now,
                provider=launch_request.provider,
                spec=launch_request.spec,
                origin=urllib.parse.urlsplit(launch_request.launch_host).netloc,
                request_origin=request.headers.get("Origin", ""),
                build_token=admission.have_build_token,
                build_only=admission.build_only,
            )
        )
        command = ResolveRef(command_id=command_id(launch_id, "resolve"), launch_id=launch_id, issued_at=now, request=launch_request)
        await state.publisher.command(command)
        log.info("launch %s requested: %s/%s%s", launch_id, provider, spec, " (build only)" if admission.build_only else "")

    with telemetry.launch_span(launch_id, provider, spec):
        return await stream_launch(request, state, launch_id, 0, admission.build_only, tracker, publish_launch)


async def attach(request: web.Request) -> web.StreamResponse:
    """GET /launches/<launch_id>/events?key=...: watch a launch already under way, from its
    first event (or after Last-Event-ID), without starting another."""
    state = state_of(request)
    launch_id = request.match_info["launch_id"]
    if not is_launch_id(launch_id):
        raise web.HTTPNotFound(text=f"No launch {launch_id!r}\n")
    key = request.rel_url.query.get("key", "")
    point = parse_resume_point(request.headers.get("Last-Event-ID"))
    if point is not None and point.launch_id == launch_id:
        key = key or point.watch_key
    if state.sealer is None or not state.sealer.check_watch_key(launch_id, key):
        raise web.HTTPForbidden(text="This launch's watch key is missing or wrong: use the X-Binderflow-Watch-Url its stream gave\n")
    try:
        exists = await launch_exists(state.js, state.subjects, launch_id)
    except EventLogUnavailable as exc:
        log.warning("launch %s: cannot attach, the event log does not answer: %s", launch_id, exc)
        raise web.HTTPServiceUnavailable(text="The event log is not answering right now; try again in a moment\n", headers={"Retry-After": "2"})
    if not exists:
        raise web.HTTPNotFound(text=f"No launch {launch_id} in the event log (never started, or older than its retention)\n")
    after = point.after_seq if point is not None and point.launch_id == launch_id else 0
    return await stream_launch(request, state, launch_id, after, False, None)


def add_launch_routes(app: web.Application) -> None:
    app.router.add_get("/build/{tail:.+}", build)
    app.router.add_get("/launches/{launch_id}/events", attach)
