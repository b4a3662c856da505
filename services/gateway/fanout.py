"""Per-launch event fan-out inside one gateway process.

Many browser tabs may watch one launch, and a gateway holds thousands of open
streams: each launch gets one core NATS subscription per gateway process, shared
by every local watcher, and events are copied to the watchers' queues in memory.
No broker-side consumer is created per connected client.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription

from schemas import AnyPhaseEvent, Subjects, decode_phase_event

from .metrics import OPEN_STREAMS, WATCHED_LAUNCHES

__all__ = ["LaunchFanout", "Watcher", "SlowWatcher"]

log = logging.getLogger(__name__)

# Events buffered for one watcher before it is considered too slow and dropped.
WATCHER_QUEUE_LIMIT = 10_000


class SlowWatcher(Exception):
    """The watcher fell too far behind and was disconnected."""


class Watcher:
    def __init__(self, fanout: "LaunchFanout", launch_id: str) -> None:
        self.launch_id = launch_id
        self._fanout = fanout
        self.queue: asyncio.Queue[AnyPhaseEvent | None] = asyncio.Queue(WATCHER_QUEUE_LIMIT)

    def __aiter__(self) -> AsyncIterator[AnyPhaseEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AnyPhaseEvent]:
        while True:
            item = await self.queue.get()
            if item is None:
                raise SlowWatcher(self.launch_id)
            yield item

    async def close(self) -> None:
        await self._fanout._release(self)

    async def __aenter__(self) -> "Watcher":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Channel:
    def __init__(self) -> None:
        self.subscription: Subscription | None = None
        self.watchers: set[Watcher] = set()


class LaunchFanout:
    def __init__(self, nc: NATS, subjects: Subjects) -> None:
        self._nc = nc
        self._subjects = subjects
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()

    async def watch(self, launch_id: str) -> Watcher:
        """A watcher that receives every event of `launch_id` published from now on.

        On return the subscription is registered with the server, so an event
        published after this call cannot be missed.
        """
        watcher = Watcher(self, launch_id)
        async with self._lock:
            channel = self._channels.get(launch_id)
            if channel is None:
                channel = _Channel()
                self._channels[launch_id] = channel

                async def on_message(msg) -> None:  # type: ignore[no-untyped-def]
                    self._dispatch(launch_id, msg.data)

                channel.subscription = await self._nc.subscribe(
                    self._subjects.launch_events(launch_id), cb=on_message, pending_msgs_limit=WATCHER_QUEUE_LIMIT
                )
                await self._nc.flush()
                WATCHED_LAUNCHES.inc()
            channel.watchers.add(watcher)
        OPEN_STREAMS.inc()
        return watcher

    def _dispatch(self, launch_id: str, data: bytes) -> None:
        channel = self._channels.get(launch_id)
        if channel is None:
            return
        try:
            event = decode_phase_event(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            log.error("undecodable event on launch %s: %s", launch_id, exc)
            return
        for watcher in list(channel.watchers):
            try:
                watcher.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("watcher of launch %s is too slow; disconnecting it", launch_id)
                channel.watchers.discard(watcher)
                while not watcher.queue.empty():
                    watcher.queue.get_nowait()
                watcher.queue.put_nowait(None)

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
                        await channel.subscription.unsubscribe()
                    except Exception:
                        pass

    @property
    def launches_watched(self) -> int:
        return len(self._channels)
