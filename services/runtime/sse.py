"""A small Server-Sent Events client, for `binderflow launch` and for tests."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp
from yarl import URL

__all__ = ["SseEvent", "read_sse", "stream_launch", "LaunchStream"]


@dataclass
class SseEvent:
    data: str
    id: str | None = None
    event: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


async def read_sse(content: aiohttp.StreamReader) -> AsyncIterator[SseEvent]:
    """Parse an SSE body into events (comments such as heartbeats are skipped)."""
    data: list[str] = []
    event_id: str | None = None
    event_type: str | None = None
    async for raw in content:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent("\n".join(data), event_id, event_type)
            data, event_type = [], None
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
        elif field == "event":
            event_type = value
    if data:
        yield SseEvent("\n".join(data), event_id, event_type)


class LaunchStream:
    """Follow one launch's event stream, reconnecting by itself when the connection drops.

    Every event the gateway sends carries an id naming the launch and its place in
    the event log; on a dropped connection the stream reconnects (to the same
    gateway, or to the next of `gateway_urls`: any gateway can continue any launch)
    with `Last-Event-ID`, and the gateway sends exactly the events missed.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        gateway_urls: list[str],
        path: str,
        headers: dict[str, str] | None = None,
        reconnect_seconds: float = 60.0,
    ) -> None:
        self._session = session
        self._urls = [u.rstrip("/") for u in gateway_urls]
        self._path = path
        self._headers = {"Accept": "text/event-stream", **(headers or {})}
        self._reconnect_seconds = reconnect_seconds
        self.last_event_id: str | None = None
        self.reconnects = 0
        self.launch_id: str | None = None
        self.watch_url: str | None = None

    async def events(self) -> AsyncIterator[SseEvent]:
        """Yield each SSE event once, ending after ready or failed.

        Raises aiohttp.ClientResponseError when the gateway refuses the request,
        and the last connection error once reconnecting has failed for
        `reconnect_seconds`.
        """
        attempt = 0
        gave_up_at: float | None = None
        while True:
            url = URL(self._urls[attempt % len(self._urls)] + self._path, encoded=True)
            headers = dict(self._headers)
            if self.last_event_id:
                headers["Last-Event-ID"] = self.last_event_id
            try:
                async with self._session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None)) as resp:
                    resp.raise_for_status()
                    self.launch_id = resp.headers.get("X-Binderflow-Launch-Id", self.launch_id)
                    self.watch_url = resp.headers.get("X-Binderflow-Watch-Url", self.watch_url)
                    gave_up_at = None
                    async for event in read_sse(resp.content):
                        if event.id:
                            self.last_event_id = event.id
                        yield event
                        if event.json().get("phase") in ("ready", "failed"):
                            return
                # The stream ended without ready or failed: the gateway went away.
                if self.last_event_id is None:
                    return
            except aiohttp.ClientResponseError:
                raise
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError):
                if self.last_event_id is None and attempt == 0 and len(self._urls) == 1:
                    raise
            loop = asyncio.get_running_loop()
            gave_up_at = gave_up_at or loop.time() + self._reconnect_seconds
            if loop.time() > gave_up_at:
                raise aiohttp.ClientConnectionError(f"lost the event stream and could not resume it within {self._reconnect_seconds:g} s")
            attempt += 1
            self.reconnects += 1
            await asyncio.sleep(min(0.2 * attempt, 2.0))


async def stream_launch(
    session: aiohttp.ClientSession,
    gateway_url: str,
    provider: str,
    spec: str,
    headers: dict[str, str] | None = None,
    fallback_urls: list[str] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield the phase events of a new launch as dicts, ending after ready or failed.

    Reconnects by itself (to `gateway_url`, then any of `fallback_urls`) if the
    connection drops. Raises aiohttp.ClientResponseError when the gateway refuses.
    """
    stream = LaunchStream(session, [gateway_url, *(fallback_urls or [])], f"/build/{provider}/{spec}", headers)
    async for event in stream.events():
        yield event.json()
