"""A small Server-Sent Events client, for `binderflow launch` and for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, AsyncIterator

import aiohttp
from yarl import URL

__all__ = ["SseEvent", "read_sse", "stream_launch"]


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


async def stream_launch(
    session: aiohttp.ClientSession, gateway_url: str, provider: str, spec: str, headers: dict[str, str] | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Yield the phase events of a new launch as dicts, ending after ready or failed.

    Raises aiohttp.ClientResponseError when the gateway refuses the request.
    """
    # encoded=True sends the spec's percent-encoding exactly as BinderHub clients do.
    url = URL(f"{gateway_url.rstrip('/')}/build/{provider}/{spec}", encoded=True)
    hdrs = {"Accept": "text/event-stream", **(headers or {})}
    async with session.get(url, headers=hdrs, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
        resp.raise_for_status()
        async for event in read_sse(resp.content):
            payload = event.json()
            yield payload
            if payload.get("phase") in ("ready", "failed"):
                return
