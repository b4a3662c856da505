"""Sending one launch's events to one client as Server-Sent Events, from any point of the log.

The loop reads the launch's events through the fan-out (one consumer per
launch per gateway, however many watch it), turns each phase event into
BinderHub's JSON, skips the launch facts clients never see, and ends at
`ready` or `failed`. Resuming is the same loop from a later position.
"""

from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from aiohttp import web

from schemas import TERMINAL_PHASES, LaunchRequested, is_phase_event
from services.runtime.eventlog import EventLogUnavailable, launch_exists

from .fanout import SlowWatcher
from .launch_metrics import LaunchMetrics
from .metrics import EVENTS_SENT, record_observations
from .sse import HeartbeatEventSource, ResumePoint, client_event_json, failed_event_response, sse_event_id
from .state import GatewayState

__all__ = ["stream_launch", "resume_launch", "watch_url"]

log = logging.getLogger(__name__)

# With heartbeats off (0), the ping task still exists: make it sleep for good.
_NO_HEARTBEAT_SECONDS = 10**9


def watch_url(launch_id: str, watch_key: str) -> str:
    """Where a second client watches this launch from its first event (X-Binderflow-Watch-Url)."""
    return f"/launches/{launch_id}/events?key={watch_key}"


async def stream_launch(
    request: web.Request,
    state: GatewayState,
    launch_id: str,
    after_seq: int,
    build_only: bool,
    tracker: LaunchMetrics | None,
    publish_first: Callable[[], Awaitable[None]] | None = None,
) -> web.StreamResponse:
    """Send a launch's client-visible events after `after_seq` as SSE, until ready or failed.

    `publish_first` (a new launch's request) runs once the watcher is in place,
    so not even the launch's first event can be missed. `tracker` turns the
    events into BinderHub's metrics (new launches only: a resumed stream was
    counted by the gateway that served its start).
    """
    watch_key = state.sealer.watch_key(launch_id) if state.sealer else ""
    watcher = await state.fanout.watch(launch_id, after_seq)
    try:
        if publish_first is not None:
            await publish_first()
        interval = state.settings.gateway.heartbeat_interval_seconds
        response = HeartbeatEventSource(
            ping_interval=interval if interval > 0 else _NO_HEARTBEAT_SECONDS,
            headers={
                "X-Binderflow-Launch-Id": launch_id,
                "X-Binderflow-Watch-Url": watch_url(launch_id, watch_key),
                "X-Accel-Buffering": "no",
            },
        )
        await response.prepare(request)
        retry_ms: int | None = state.settings.events.client_retry_ms
        async with response:
            try:
                async for item in watcher:
                    event = item.event
                    if not is_phase_event(event):
                        # A launch fact: clients never see it, but it says how to show the rest.
                        if isinstance(event, LaunchRequested):
                            build_only = event.build_only
                        continue
                    if tracker is not None:
                        record_observations(tracker.on_event(event.phase, time.monotonic()))
                    await response.send(
                        client_event_json(event, build_only, state.sealer),
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


async def resume_launch(request: web.Request, state: GatewayState, point: ResumePoint) -> web.StreamResponse | None:
    """Continue an existing launch's stream from `point`, or None when it cannot be resumed
    (not our watch key, or not in the log): the request then starts a new launch."""
    if state.sealer is None or not state.sealer.check_watch_key(point.launch_id, point.watch_key):
        return None
    try:
        if not await launch_exists(state.js, state.subjects, point.launch_id):
            return None
    except EventLogUnavailable as exc:
        log.warning("launch %s: cannot resume, the event log does not answer: %s", point.launch_id, exc)
        return failed_event_response(503, "The event log is not answering right now; reconnect in a moment to resume this launch")
    log.info("launch %s: client resumes after %d", point.launch_id, point.after_seq)
    return await stream_launch(request, state, point.launch_id, point.after_seq, False, None)
