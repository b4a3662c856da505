"""Reading the event log fast: a time range or one launch in bulk, a launch's first facts, and the live tail.

Bulk reads use an ephemeral pull consumer (no acks, in memory) and keep two
large pull requests in flight, so the server streams without waiting for the
reader. Per-message overhead in the client is what limits the rate, so the
messages come over a connection of the reader's own (wire.py) where the server
allows, and are handed over in lists, not one by one. A read stops by itself
once it has delivered the last message the stream held for its filter (the
pending count carried by each message reaches zero), or at `until`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta, timezone
from typing import AsyncGenerator, Callable

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from schemas import TERMINAL_PHASES, AnyEvent, LoggedEvent, RefResolved, Subjects, decode_event
from services.runtime.eventlog import LogFollower, LogRecord, StartAt, ack_fields, delete_reader_consumer, make_reader_consumer

from .wire import MSG, Frame, WireConnection, WireUnavailable

__all__ = ["ReadProgress", "read_records", "read_events", "first_launch_facts", "follow_records", "subject_matcher", "prefers_server_filter", "PULL_BATCH"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Messages asked for per pull request; two requests are kept in flight.
PULL_BATCH = 4096
# A bulk read that hears nothing for this long asks the server whether anything is left.
_IDLE_CHECK_SECONDS = 5.0

# Called with (messages read so far, messages the read expects in all).
ReadProgress = Callable[[int, int], None]


def _ns(moment: datetime) -> int:
    """Nanoseconds since the epoch, exact (no float on the way: stored times are 19 digits)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def subject_matcher(subject_filter: str) -> Callable[[str], bool]:
    """A predicate: does a subject match a NATS filter (`*` one token, `>` the rest)? Pure."""
    wanted = subject_filter.split(".")
    if wanted[-1] == ">":
        head = wanted[:-1]

        def matches_prefix(subject: str) -> bool:
            tokens = subject.split(".")
            return len(tokens) > len(head) and all(w == "*" or w == t for w, t in zip(head, tokens))

        return matches_prefix

    def matches(subject: str) -> bool:
        tokens = subject.split(".")
        return len(tokens) == len(wanted) and all(w == "*" or w == t for w, t in zip(wanted, tokens))

    return matches


# What one message costs a bulk read, measured with nats-server 2.15 on 2 cores
# (bench: `python -m bench events`): a server-side wildcard filter over a stream
# with many subjects (`<p>.launch.*.events`) makes the server search each block's
# subjects for every message (~45 us per delivered message), while an unfiltered
# consumer streams at the reader's own speed (~5 us per message over wire.py,
# ~10 us through nats-py, filtered here). A read asks the server how many
# messages each way would deliver and takes the cheaper: unfiltered unless the
# filter keeps only a small share (one launch's subjects, or a log made mostly
# of build log lines).
_SERVER_FILTER_SECONDS_PER_MESSAGE = 45e-6
_CLIENT_SECONDS_PER_MESSAGE = 5e-6


def prefers_server_filter(matching: int, everything: int) -> bool:
    """Whether a server-side filter delivering `matching` messages beats reading `everything`. Pure."""
    return matching * _SERVER_FILTER_SECONDS_PER_MESSAGE <= everything * _CLIENT_SECONDS_PER_MESSAGE


class _Pull:
    """What a bulk read does with each delivered message, whichever way it arrives.

    Keeps about two pull requests' worth of messages asked for, hands records
    over in lists, and knows when the read is done: at the last message the
    stream held (pending 0), or at the first one stored at `until` or later.
    """

    def __init__(self, batch_size: int, until_ns: int | None, matches: Callable[[str], bool] | None) -> None:
        self.batch_size = batch_size
        self.until_ns = until_ns
        self.matches = matches
        self.handoff: asyncio.Queue[list[LogRecord] | BaseException | None] = asyncio.Queue()
        self.outstanding = 0
        self.finished = False
        self.scanned = 0
        self._buffer: list[LogRecord] = []
        self._hand_at = max(1, batch_size // 2)

    def asked(self) -> None:
        """A pull request for batch_size more messages was sent."""
        self.outstanding += self.batch_size

    def on_message(self, subject: str, reply: str, data: bytes) -> bool:
        """Take one delivered message; returns True when another pull request should go out."""
        if self.finished:
            return False
        seq, stored_ns, pending = ack_fields(reply)
        if self.until_ns is not None and stored_ns >= self.until_ns:
            self.finish()
            return False
        self.scanned += 1
        self.outstanding -= 1
        if self.matches is None or self.matches(subject):
            self._buffer.append(LogRecord(seq, stored_ns, subject, data))
        if pending == 0:
            self.finish()
            return False
        if len(self._buffer) >= self._hand_at:
            self.handoff.put_nowait(self._buffer)
            self._buffer = []
        return self.outstanding <= self.batch_size

    def on_status(self, status: str, description: str = "") -> None:
        if status in ("404", "408"):
            # A request ran out; the idle check decides whether anything is left.
            self.outstanding = 0
        elif status and status != "100" and not self.finished:
            self.finished = True
            self.handoff.put_nowait(RuntimeError(f"reading the log: {status} {description}".rstrip()))

    def finish(self) -> None:
        self.finished = True
        self.handoff.put_nowait(self._buffer)
        self._buffer = []
        self.handoff.put_nowait(None)

    def fail(self, error: BaseException) -> None:
        if not self.finished:
            self.finished = True
            self.handoff.put_nowait(error)


class _ClientDelivery:
    """Messages through the nats-py connection (any server, TLS and every kind of auth)."""

    def __init__(self, nc: NATS, pull_subject: str, request: bytes, pull: _Pull) -> None:
        self._nc, self._pull_subject, self._request, self._pull = nc, pull_subject, request, pull
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None

    async def start(self) -> None:
        pull = self._pull

        async def on_message(msg: Msg) -> None:
            if msg.reply:
                if pull.on_message(msg.subject, msg.reply, msg.data):
                    await self.ask()
            else:
                headers = msg.headers or {}
                pull.on_status(headers.get("Status", ""), headers.get("Description", ""))

        self._sub = await self._nc.subscribe(
            self._inbox, cb=on_message, pending_msgs_limit=4 * pull.batch_size + 100, pending_bytes_limit=512 * 1024 * 1024
        )
        await self.ask()
        await self.ask()

    async def ask(self) -> None:
        self._pull.asked()
        await self._nc.publish(self._pull_subject, self._request, reply=self._inbox)

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception as exc:  # the connection may be closing; the server forgets the inbox anyway
                log.debug("reader unsubscribe: %s", exc)


class _WireDelivery:
    """Messages over a connection of their own, split by wire.py: several times faster."""

    def __init__(self, wire: WireConnection, pull_subject: str, request: bytes, pull: _Pull) -> None:
        self._wire, self._pull_subject, self._request, self._pull = wire, pull_subject, request, pull
        self._inbox = f"_INBOX.{uuid.uuid4().hex}"
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pull = self._pull

        def on_frame(frame: Frame) -> bool:
            if frame.kind == MSG:
                if pull.on_message(frame.subject, frame.reply, frame.data):
                    self._ask_now()
            else:
                pull.on_status(frame.status)
            return not pull.finished

        async def deliver() -> None:
            try:
                await self._wire.frames(on_frame)
            except Exception as exc:
                pull.fail(exc)

        self._wire.subscribe(self._inbox)
        self._ask_now()
        self._ask_now()
        self._task = asyncio.create_task(deliver())

    def _ask_now(self) -> None:
        self._pull.asked()
        self._wire.publish(self._pull_subject, self._inbox, self._request)

    async def ask(self) -> None:
        self._ask_now()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._wire.close()


def _server_url(nc: NATS) -> str | None:
    """The URL nats-py connected to (with its credentials), for a connection of the reader's own."""
    connected = nc.connected_url
    return connected.geturl() if connected is not None else None


async def read_records(
    nc: NATS,
    stream: str,
    subject_filter: str | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_size: int = PULL_BATCH,
    progress: ReadProgress | None = None,
    server_filter: bool | None = None,
    use_wire: bool = True,
) -> AsyncGenerator[list[LogRecord], None]:
    """Yield, in log order and in lists, every message of `stream` on `subject_filter`
    (None: all) stored at or after `since` and before `until` (None: from the
    start / to the end).

    Ends by itself when it has caught up with the stream. `progress` is told
    messages scanned against messages to scan. `server_filter` forces where the
    filter applies (True: the server, False: here); None chooses the cheaper.
    Messages come over a connection of the reader's own (wire.py) unless
    `use_wire` is False or the server needs more than it speaks; then through
    `nc`. Raises nats.js.errors.NotFoundError when the stream does not exist,
    nats errors when the server cannot be reached.
    """
    js = nc.jetstream()
    matches: Callable[[str], bool] | None = None
    if subject_filter is None or subject_filter == ">":
        name, total = await make_reader_consumer(js, stream, None, since)
    elif server_filter is False:
        name, total = await make_reader_consumer(js, stream, None, since)
        matches = subject_matcher(subject_filter)
    else:
        name, total = await make_reader_consumer(js, stream, subject_filter, since)
        if total and server_filter is None:
            everything_name, everything = await make_reader_consumer(js, stream, None, since)
            if prefers_server_filter(total, everything):
                await delete_reader_consumer(js, stream, everything_name)
            else:
                await delete_reader_consumer(js, stream, name)
                name, total, matches = everything_name, everything, subject_matcher(subject_filter)
    if progress:
        progress(0, total)
    if total == 0:
        await delete_reader_consumer(js, stream, name)
        return

    pull = _Pull(batch_size, _ns(until) if until is not None else None, matches)
    pull_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}"
    # A lingering request lasts this long; the idle check asks again if one lapses.
    request = msgspec.json.encode({"batch": batch_size, "expires": 30_000_000_000})
    delivery: _ClientDelivery | _WireDelivery | None = None
    url = _server_url(nc) if use_wire else None
    if url is not None:
        try:
            delivery = _WireDelivery(await WireConnection.open(url), pull_subject, request, pull)
        except WireUnavailable as exc:
            log.debug("reading through nats-py: %s", exc)
    if delivery is None:
        delivery = _ClientDelivery(nc, pull_subject, request, pull)
    try:
        await delivery.start()
        while True:
            try:
                item = await asyncio.wait_for(pull.handoff.get(), _IDLE_CHECK_SECONDS)
            except asyncio.TimeoutError:
                # Nothing for a while: retention may have dropped what was pending.
                try:
                    current = await js.consumer_info(stream, name)
                except NotFoundError:
                    break
                if not current.num_pending:
                    break
                pull.outstanding = 0
                await delivery.ask()
                continue
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            if progress:
                progress(pull.scanned, total)
            if item:
                yield item
    finally:
        pull.finished = True
        await delivery.close()
        await delete_reader_consumer(js, stream, name)


async def read_events(
    nc: NATS,
    stream: str,
    subject_filter: str | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: ReadProgress | None = None,
    server_filter: bool | None = None,
    use_wire: bool = True,
) -> AsyncGenerator[LoggedEvent, None]:
    """Like read_records, decoded; a message that is not an event is logged and skipped."""
    async with contextlib.aclosing(
        read_records(nc, stream, subject_filter, since=since, until=until, progress=progress, server_filter=server_filter, use_wire=use_wire)
    ) as batches:
        async for records in batches:
            for record in records:
                try:
                    event = decode_event(record.data)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    log.warning("skipping undecodable message %d on %s: %s", record.seq, record.subject, exc)
                    continue
                yield LoggedEvent(record.seq, event)


async def first_launch_facts(js: JetStreamContext, subjects: Subjects, launch_id: str, max_messages: int = 6) -> list[AnyEvent]:
    """The first events of a launch (not its log lines), up to its `resolved` fact or its end.

    What a reader that starts in the middle of the log needs to know which
    provider and repository a launch is for. Direct gets on the launch's subject:
    one round trip per message, no consumer.
    """
    found: list[AnyEvent] = []
    seq = 1
    subject = subjects.launch_events(launch_id)
    for _ in range(max_messages):
        try:
            raw = await js.get_msg(subjects.events_stream, seq=seq, subject=subject, next=True, direct=True)
        except NotFoundError:
            break
        try:
            event = decode_event(raw.data or b"")
        except (msgspec.ValidationError, msgspec.DecodeError):
            event = None
        if event is not None:
            found.append(event)
            if isinstance(event, RefResolved) or event.phase in TERMINAL_PHASES:
                break
        seq = (raw.seq or seq) + 1
    return found


async def follow_records(
    nc: NATS, stream: str, subject: str, *, since: datetime | None = None, on_ready: Callable[[], None] | None = None
) -> AsyncGenerator[LogRecord, None]:
    """Yield messages on `subject` as they are stored (from `since`, else new ones only), forever.

    A LogFollower: it survives reconnects and never skips or repeats a message.
    `on_ready` is called once the consumer exists (from then on nothing stored
    is missed).
    """
    start: StartAt = since if since is not None else "new"
    async with LogFollower(nc.jetstream(), stream, subject, start=start) as follower:
        if on_ready is not None:
            on_ready()
        async for record in follower:
            yield record
