"""Reading the event log back: one launch in full, and the latest build of a repository.

Reads use a short-lived ordered consumer over the launch's subjects and stop
when it has caught up with what the stream held when the read began.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import msgspec
from nats.js import JetStreamContext
from nats.js import api as jsapi
from nats.js.errors import NotFoundError

from schemas import AnyEvent, BuildStarted, Subjects, decode_event
from schemas.subjects import repo_key

__all__ = ["StoredEvent", "read_launch", "latest_repo_build", "build_log_text"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event: AnyEvent


async def _read_subject(js: JetStreamContext, stream: str, subject: str, idle_seconds: float = 5.0) -> list[StoredEvent]:
    try:
        info = await js.stream_info(stream, subjects_filter=subject)
    except NotFoundError:
        return []
    if not info.state.subjects:
        return []
    expected = sum(info.state.subjects.values())
    out: list[StoredEvent] = []
    sub = await js.subscribe(subject, stream=stream, ordered_consumer=True, deliver_policy=jsapi.DeliverPolicy.ALL)
    try:
        while len(out) < expected:
            try:
                msg = await sub.next_msg(timeout=idle_seconds)
            except asyncio.TimeoutError:
                break  # retention dropped some while we read: return what there is
            try:
                out.append(StoredEvent(msg.metadata.sequence.stream, decode_event(msg.data)))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                log.error("undecodable event in %s: %s", subject, exc)
                out.append(StoredEvent(msg.metadata.sequence.stream, None))  # type: ignore[arg-type]
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return [e for e in out if e.event is not None]


async def read_launch(js: JetStreamContext, subjects: Subjects, launch_id: str) -> list[StoredEvent]:
    """Every event and fact of one launch, in log order; [] for an unknown launch."""
    return await _read_subject(js, subjects.events_stream, subjects.launch_all(launch_id))


async def latest_repo_build(js: JetStreamContext, subjects: Subjects, repo_url: str) -> BuildStarted | None:
    """The most recent build recorded for `repo_url`, or None."""
    try:
        msg = await js.get_last_msg(subjects.events_stream, subjects.repo_builds(repo_key(repo_url)))
    except NotFoundError:
        return None
    event = decode_event(msg.data or b"")
    return event if isinstance(event, BuildStarted) else None


# What a build log shows: the build's own phases (not the launch of a server).
_BUILD_LOG_PHASES = frozenset({"waiting", "fetching", "building", "pushing", "built", "failed"})


def build_log_text(events: list[StoredEvent], build_id: str | None = None) -> str:
    """The text of a launch's build log, as the client saw it; only build `build_id`'s lines if given. Pure."""
    lines: list[str] = []
    for stored in events:
        event = stored.event
        if event.phase not in _BUILD_LOG_PHASES:
            continue
        if build_id is not None and event.phase in ("fetching", "building", "pushing") and f".build.{build_id}." not in event.event_id:
            continue
        message = event.message
        lines.append(message if message.endswith("\n") else message + "\n")
    return "".join(lines)
