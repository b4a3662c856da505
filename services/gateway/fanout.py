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
from typing import AsyncIterator

from nats.js import JetStreamContext

from schemas import FACT_KINDS, TERMINAL_PHASES, LoggedEvent, Subjects
from services.runtime.eventlog import LogFollower, LogRecord, follow_launch

from .metrics import OPEN_STREAMS, WATCHED_LAUNCHES

__all__ = ["LaunchFanout", "Watcher", "SlowWatcher", "WATCHER_QUEUE_LIMIT"]

log = logging.getLogger(__name__)

# Events buffered for one watcher before it is considered too slow and dropped.
WATCHER_QUEUE_LIMIT = 100_000


class SlowWatcher(Exception):
    """The watcher fell too far behind and was disconnected."""


_END = object()
_SLOW = object()


class Watcher:
    """One client's view of a launch: events after `after_seq`, in log order."""

    def __init__(self, fanout: "LaunchFanout", launch_id: str, after_seq: int, queue_limit: int = WATCHER_QUEUE_LIMIT) -> None:
        self.launch_id = launch_id
        self.after_seq = after_seq
        self._fanout = fanout
        self.queue: asyncio.Queue[object] = asyncio.Queue(queue_limit)
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
    __slots__ = ("follower", "history", "watchers")

    def __init__(self) -> None:
        self.follower: LogFollower | None = None
        self.history: list[LoggedEvent] = []
        self.watchers: set[Watcher] = set()


class LaunchFanout:
    """Every watched launch's events, read once per gateway process and copied to its watchers."""

    def __init__(self, js: JetStreamContext, subjects: Subjects, watcher_queue_limit: int = WATCHER_QUEUE_LIMIT) -> None:
        self._js = js
        self._subjects = subjects
        self._watcher_queue_limit = watcher_queue_limit
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()

    async def watch(self, launch_id: str, after_seq: int = 0) -> Watcher:
        """A watcher receiving every event of `launch_id` after position `after_seq`.

        Events already in the log are replayed to it first, then the live ones,
        in log order. On return the consumer exists, so nothing published from now
        on can be missed (and nothing earlier is, as it reads from the start).
        """
        watcher = Watcher(self, launch_id, after_seq, self._watcher_queue_limit)
        async with self._lock:
            channel = self._channels.get(launch_id)
            if channel is None:
                channel = _Channel()
                self._channels[launch_id] = channel

                def on_record(record: LogRecord) -> None:
                    self._dispatch(launch_id, record)

                follower = follow_launch(self._js, self._subjects, launch_id)
                try:
                    await follower.open(on_record)
                except BaseException:
                    del self._channels[launch_id]
                    raise
                channel.follower = follower
                WATCHED_LAUNCHES.inc()
            # The watcher starts from what this process already read (a consumer may
            # deliver while it is being created), then gets each event as it comes:
            # no await between the two, so nothing falls in between.
            for item in channel.history:
                watcher.offer(item)
            channel.watchers.add(watcher)
        OPEN_STREAMS.inc()
        return watcher

    def _dispatch(self, launch_id: str, record: LogRecord) -> None:
        channel = self._channels.get(launch_id)
        if channel is None:
            return
        item = record.logged()
        if item is None:
            return
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
                if channel.follower is not None:
                    await channel.follower.close()

    @property
    def launches_watched(self) -> int:
        return len(self._channels)
