"""Reading the event log: the one way to follow it, and what is built on that.

`LogFollower` reads the log on one subject filter in log order, each stored
message once, from the start, from a time or from now on. It is a JetStream
ordered consumer, which nats-py re-creates when the server loses it (a restart,
a missed heartbeat, a gap in its sequence); a re-created consumer may deliver
again what was already read, so the follower drops anything at or before the
last stream sequence it handed out. Everything that follows a launch uses it:
the gateway's fan-out, a builder following another launch's build, the log
endpoints, and `binderflow events tail`.

Beside it: `iter_launch` / `read_launch` (a launch's events stored so far, read
in bounded batches by a pull consumer of their own), `build_log_text`,
`latest_repo_build` and `launch_exists` (direct gets, no consumer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import AsyncGenerator, AsyncIterator, Callable, Literal

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js import api as jsapi
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import NotFoundError

from schemas import AnyEvent, BuildStarted, LoggedEvent, Subjects, decode_event
from schemas.subjects import repo_key

__all__ = [
    "LogRecord",
    "LogFollower",
    "EventLogUnavailable",
    "ack_fields",
    "follow_launch",
    "make_reader_consumer",
    "delete_reader_consumer",
    "iter_launch",
    "read_launch",
    "launch_exists",
    "latest_repo_build",
    "build_log_line",
    "build_log_text",
]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# A follower buffers at most this many undelivered messages (nats-py's pending limit).
DEFAULT_PENDING_LIMIT = 100_000


class EventLogUnavailable(Exception):
    """The event log could not be asked (NATS down or overloaded)."""


def ack_fields(reply: str) -> tuple[int, int, int]:
    """(stream sequence, stored-at ns, pending) from a JetStream ack subject. Pure.

    `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the
    domain form with two more tokens after `$JS.ACK`.
    """
    tokens = reply.split(".")
    shift = 0 if len(tokens) == 9 else 2
    return int(tokens[5 + shift]), int(tokens[7 + shift]), int(tokens[8 + shift])


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One message as the event log stored it, not yet decoded."""

    seq: int
    # When the stream stored it (nanoseconds since the epoch): the log's own clock.
    stored_ns: int
    subject: str
    data: bytes

    @property
    def stored_at(self) -> datetime:
        """The stored time to the microsecond (truncated, so `until=record.stored_at` excludes the record)."""
        return _EPOCH + timedelta(microseconds=self.stored_ns // 1000)

    def decode(self) -> AnyEvent:
        """The event; raises msgspec.ValidationError/DecodeError on a message that is not one."""
        return decode_event(self.data)

    def logged(self) -> LoggedEvent | None:
        """The event with its position, or None (logged) when the message is not an event."""
        try:
            return LoggedEvent(self.seq, decode_event(self.data))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            log.error("undecodable message %d on %s: %s", self.seq, self.subject, exc)
            return None


# Where a follower starts: every stored message, only those stored from now on,
# or those stored at or after a time.
StartAt = Literal["all", "new"] | datetime


class LogFollower:
    """The log on `subject` in log order, each message once, as it is stored.

    Either pass `on_record` to `open()` (called for every message, in order, from
    nats-py's delivery task: what a fan-out to many watchers wants), or read
    with `next()` / `async for`. Reads never end by themselves: `caught_up`
    says whether the last record read was the last one stored so far.
    """

    # A gateway holds one per watched launch: thousands.
    __slots__ = ("_js", "_stream", "_subject", "_start", "_pending_limit", "_sub", "last_seq", "caught_up")

    def __init__(self, js: JetStreamContext, stream: str, subject: str, *, start: StartAt = "all", pending_limit: int = DEFAULT_PENDING_LIMIT) -> None:
        self._js = js
        self._stream = stream
        self._subject = subject
        self._start = start
        self._pending_limit = pending_limit
        self._sub: Subscription | None = None
        self.last_seq = 0
        # True when the last record handed out had nothing stored after it.
        self.caught_up = False

    async def open(self, on_record: Callable[[LogRecord], None] | None = None) -> "LogFollower":
        """Create the consumer; from now on nothing stored on the subject is missed."""
        if isinstance(self._start, datetime):
            policy, config = jsapi.DeliverPolicy.BY_START_TIME, jsapi.ConsumerConfig(opt_start_time=self._start)
        else:
            policy, config = (jsapi.DeliverPolicy.ALL if self._start == "all" else jsapi.DeliverPolicy.NEW), None

        cb = None
        if on_record is not None:
            deliver = on_record

            async def cb(msg: Msg) -> None:
                record = self._accept(msg)
                if record is not None:
                    deliver(record)

        self._sub = await self._js.subscribe(
            self._subject,
            stream=self._stream,
            cb=cb,
            ordered_consumer=True,
            deliver_policy=policy,
            config=config,
            pending_msgs_limit=self._pending_limit,
        )
        return self

    def _accept(self, msg: Msg) -> LogRecord | None:
        """The record in `msg`, or None when it was handed out already (a re-created consumer delivers again)."""
        seq, stored_ns, pending = ack_fields(msg.reply)
        if seq <= self.last_seq:
            return None
        self.last_seq = seq
        self.caught_up = pending == 0
        return LogRecord(seq, stored_ns, msg.subject, msg.data)

    async def next(self, timeout: float) -> LogRecord | None:
        """The next record, or None when none is stored within `timeout` seconds."""
        assert self._sub is not None, "open() first"
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            try:
                msg = await self._sub.next_msg(timeout=left)
            except asyncio.TimeoutError:
                return None
            record = self._accept(msg)
            if record is not None:
                return record

    async def __aiter__(self) -> AsyncIterator[LogRecord]:
        assert self._sub is not None, "open() first"
        async for msg in self._sub.messages:
            record = self._accept(msg)
            if record is not None:
                yield record

    async def close(self) -> None:
        if self._sub is None:
            return
        sub, self._sub = self._sub, None
        try:
            await sub.unsubscribe()
        except Exception as exc:  # the connection may already be closing; the server drops it anyway
            log.debug("unsubscribing from %s: %s", self._subject, exc)

    async def __aenter__(self) -> "LogFollower":
        if self._sub is None:
            await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def follow_launch(js: JetStreamContext, subjects: Subjects, launch_id: str, *, pending_limit: int = DEFAULT_PENDING_LIMIT) -> LogFollower:
    """A follower of everything of one launch (events, facts and log lines), from its first event."""
    return LogFollower(js, subjects.events_stream, subjects.launch_all(launch_id), start="all", pending_limit=pending_limit)


async def make_reader_consumer(js: JetStreamContext, stream: str, subject_filter: str | None, since: datetime | None = None) -> tuple[str, int]:
    """Create an ephemeral no-ack pull consumer for one read; returns (its name, messages it will deliver).

    The server removes it by itself if the reader dies; a reader that finishes
    deletes it (delete_reader_consumer).
    """
    name = f"read-{uuid.uuid4().hex}"
    config = jsapi.ConsumerConfig(
        name=name,
        deliver_policy=jsapi.DeliverPolicy.BY_START_TIME if since else jsapi.DeliverPolicy.ALL,
        opt_start_time=since,
        ack_policy=jsapi.AckPolicy.NONE,
        mem_storage=True,
        inactive_threshold=60.0,
        max_waiting=16,
        filter_subject=subject_filter,
    )
    info = await js.add_consumer(stream, config)
    return name, info.num_pending or 0


async def delete_reader_consumer(js: JetStreamContext, stream: str, name: str) -> None:
    try:
        await js.delete_consumer(stream, name)
    except Exception as exc:  # the server drops it after inactive_threshold anyway
        log.debug("could not delete reader consumer %s: %s", name, exc)


# A read of a stored launch asks for this many messages at a time: the reader
# holds at most one batch, however long the launch's build log is.
READ_BATCH = 512


async def iter_launch(
    js: JetStreamContext, subjects: Subjects, launch_id: str, idle_seconds: float = 5.0, batch: int = READ_BATCH
) -> AsyncGenerator[LoggedEvent, None]:
    """Every event and fact of one launch stored so far, in log order (nothing for an unknown launch).

    A pull consumer of its own, read `batch` messages at a time as the caller
    takes them: a long build log is never held whole, by this process or by the
    client's pending queue. It ends once it has read what was stored when it
    began (or when nothing comes for `idle_seconds`: retention dropped the rest).
    """
    subject = subjects.launch_all(launch_id)
    stream = subjects.events_stream
    try:
        info = await js.stream_info(stream, subjects_filter=subject)
    except NotFoundError:
        return
    if not info.state.subjects:
        return
    name, _ = await make_reader_consumer(js, stream, subject)
    try:
        reader = await js.pull_subscribe_bind(name, stream=stream)
        try:
            while True:
                try:
                    msgs = await reader.fetch(batch, timeout=idle_seconds)
                except NatsTimeoutError:
                    return
                pending = 0
                for msg in msgs:
                    seq, stored_ns, pending = ack_fields(msg.reply)
                    logged = LogRecord(seq, stored_ns, msg.subject, msg.data).logged()
                    if logged is not None:
                        yield logged
                if not msgs or pending == 0:
                    return
        finally:
            await reader.unsubscribe()
    finally:
        await delete_reader_consumer(js, stream, name)


async def read_launch(js: JetStreamContext, subjects: Subjects, launch_id: str, idle_seconds: float = 5.0) -> list[LoggedEvent]:
    """Every event and fact of one launch stored so far, in log order; [] for an unknown launch."""
    async with contextlib.aclosing(iter_launch(js, subjects, launch_id, idle_seconds)) as events:
        return [logged async for logged in events]


async def launch_exists(js: JetStreamContext, subjects: Subjects, launch_id: str) -> bool:
    """Whether the event log holds `launch_id` (it may never have existed, or have aged out).

    Every launch's first event is on its events subject, so a direct get of the
    last message there answers without creating a consumer. Raises
    EventLogUnavailable when the log cannot be asked.
    """
    try:
        await js.get_last_msg(subjects.events_stream, subjects.launch_events(launch_id), direct=True)
    except NotFoundError:
        return False
    except Exception as exc:
        raise EventLogUnavailable(str(exc) or type(exc).__name__) from exc
    return True


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


def build_log_line(event: AnyEvent) -> str:
    """What one event adds to a build log as the client saw it ("" for none). Pure."""
    if event.phase not in _BUILD_LOG_PHASES:
        return ""
    message = event.message
    return message if message.endswith("\n") else message + "\n"


def build_log_text(events: list[LoggedEvent]) -> str:
    """The text of a launch's build log, as the client saw it. Pure."""
    return "".join(build_log_line(logged.event) for logged in events)
