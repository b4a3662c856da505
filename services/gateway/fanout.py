"""Per-launch event fan-out inside one gateway process, resumable from any point.

Many browser tabs may watch one launch, and a gateway holds thousands of open
streams: each watched launch gets ONE ordered JetStream consumer per gateway
process (not one per client), reading the launch's subjects from the start.
Events are kept in memory while the launch is watched and copied to every
watcher's queue, each from the position it asked for. Positions are JetStream
stream sequences, the same in every gateway process, so a client that
reconnects to another gateway with its last position gets exactly the events it
missed, then the live tail: nothing twice, nothing lost, in order.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import AsyncIterator

import msgspec
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api as jsapi
from nats.js.errors import NotFoundError

from schemas import FACT_KINDS, TERMINAL_PHASES, AnyEvent, Subjects, decode_event

from .metrics import OPEN_STREAMS, WATCHED_LAUNCHES

__all__ = ["LaunchFanout", "Watcher", "SlowWatcher", "LoggedEvent", "launch_exists", "EventLogUnavailable"]

log = logging.getLogger(__name__)

# Events buffered for one watcher before it is considered too slow and dropped.
WATCHER_QUEUE_LIMIT = 100_000


class SlowWatcher(Exception):
    """The watcher fell too far behind and was disconnected."""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event and its position in the event log (the stream sequence)."""

    seq: int
    event: AnyEvent


_END = object()
_SLOW = object()


class Watcher:
    """One client's view of a launch: events after `after_seq`, in log order."""

    def __init__(self, fanout: "LaunchFanout", launch_id: str, after_seq: int) -> None:
        self.launch_id = launch_id
        self.after_seq = after_seq
        self._fanout = fanout
        self.queue: asyncio.Queue[object] = asyncio.Queue(WATCHER_QUEUE_LIMIT)
        self._closed = False

    def offer(self, item: LoggedEvent) -> bool:
        """Queue `item` if it is after this watcher's position; False when the watcher is too slow.

        Facts (not sent to clients) are queued wherever they are: a resumed stream
        still learns what the launch was (build only or not, which repository).
        """
        if item.seq <= self.after_seq:
            if item.event.phase in FACT_KINDS:
                return self._put(item)
            if item.event.phase in TERMINAL_PHASES:
                # The client saw the end already (it resumes after it): nothing more will come.
                self.queue.put_nowait(_END)
            return True
        self.after_seq = item.seq
        return self._put(item)

    def _put(self, item: LoggedEvent) -> bool:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(_SLOW)
            return False
        return True

    def __aiter__(self) -> AsyncIterator[LoggedEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LoggedEvent]:
        while True:
            item = await self.queue.get()
            if item is _END:
                return
            if item is _SLOW:
                raise SlowWatcher(self.launch_id)
            assert isinstance(item, LoggedEvent)
            yield item

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._fanout._release(self)

    async def __aenter__(self) -> "Watcher":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Channel:
    def __init__(self) -> None:
        self.subscription: object | None = None
        self.history: list[LoggedEvent] = []
        self.watchers: set[Watcher] = set()


class EventLogUnavailable(Exception):
    """The event log could not be asked (NATS down or overloaded)."""


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


class LaunchFanout:
    def __init__(self, nc: NATS, subjects: Subjects, js: JetStreamContext | None = None) -> None:
        self._nc = nc
        self._js = js or nc.jetstream()
        self._subjects = subjects
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()

    async def watch(self, launch_id: str, after_seq: int = 0) -> Watcher:
        """A watcher receiving every event of `launch_id` after position `after_seq`.

        Events already in the log are replayed to it first, then the live ones,
        in log order. On return the consumer exists, so nothing published from now
        on can be missed (and nothing earlier is, as it reads from the start).
        """
        watcher = Watcher(self, launch_id, after_seq)
        async with self._lock:
            channel = self._channels.get(launch_id)
            if channel is None:
                channel = _Channel()
                self._channels[launch_id] = channel

                async def on_message(msg) -> None:  # type: ignore[no-untyped-def]
                    self._dispatch(launch_id, msg.metadata.sequence.stream, msg.data)

                channel.subscription = await self._js.subscribe(
                    self._subjects.launch_all(launch_id),
                    stream=self._subjects.events_stream,
                    cb=on_message,
                    ordered_consumer=True,
                    deliver_policy=jsapi.DeliverPolicy.ALL,
                    pending_msgs_limit=WATCHER_QUEUE_LIMIT,
                )
                WATCHED_LAUNCHES.inc()
            else:
                # A later watcher starts from what this process already read.
                for item in channel.history:
                    watcher.offer(item)
            channel.watchers.add(watcher)
        OPEN_STREAMS.inc()
        return watcher

    def _dispatch(self, launch_id: str, seq: int, data: bytes) -> None:
        channel = self._channels.get(launch_id)
        if channel is None:
            return
        if channel.history and seq <= channel.history[-1].seq:
            return  # the ordered consumer was reset and delivers again: already have it
        try:
            event = decode_event(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            log.error("undecodable event on launch %s (seq %d): %s", launch_id, seq, exc)
            return
        item = LoggedEvent(seq, event)
        channel.history.append(item)
        for watcher in list(channel.watchers):
            if not watcher.offer(item):
                log.warning("watcher of launch %s is too slow; disconnecting it", launch_id)
                channel.watchers.discard(watcher)

    async def _release(self, watcher: Watcher) -> None:
        OPEN_STREAMS.dec()
        async with self._lock:
            channel = self._channels.get(watcher.launch_id)
            if channel is None:
                return
            channel.watchers.discard(watcher)
            if not channel.watchers:
                del self._channels[watcher.launch_id]
                WATCHED_LAUNCHES.dec()
                if channel.subscription is not None:
                    try:
                        await channel.subscription.unsubscribe()  # type: ignore[attr-defined]
                    except Exception:
                        pass

    @property
    def js(self) -> JetStreamContext:
        return self._js

    @property
    def launches_watched(self) -> int:
        return len(self._channels)
