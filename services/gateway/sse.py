"""Server-Sent Events as BinderHub's clients read them: the response, each event's JSON and its id.

- `HeartbeatEventSource`: an SSE response whose keep-alive comment is
  `:heartbeat`, as BinderHub sends (proxies close idle streams otherwise).
- `failed_event_response`: a refusal, as the one `failed` event BinderHub sends.
- `client_event_json`: what a client receives for a logged phase event.
- `sse_event_id` / `parse_resume_point`: an event's SSE id names its launch, its
  position in the log and a watch key, so a client that reconnects with
  Last-Event-ID resumes there, on any gateway.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

import msgspec
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from schemas import AnyPhaseEvent, ServerReady
from schemas.identity import is_launch_id
from services.runtime.sealing import SealError, TokenSealer

__all__ = [
    "HeartbeatEventSource",
    "failed_event_response",
    "client_event_json",
    "sse_event_id",
    "ResumePoint",
    "parse_resume_point",
]

log = logging.getLogger(__name__)


class HeartbeatEventSource(EventSourceResponse):
    """An SSE response whose keep-alive comment is `:heartbeat`, as BinderHub sends.

    Overrides aiohttp-sse's private `_ping` (present with this shape since
    aiohttp-sse 3.0, the lower bound in pyproject.toml; tests/test_gateway_sse.py
    checks the comment arrives).
    """

    async def _ping(self) -> None:
        message = f":heartbeat{self._sep}{self._sep}".encode()
        while True:
            await asyncio.sleep(self._ping_interval)
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self.write(message)
            except TimeoutError:
                self._abort_transport()
                break
            except (ConnectionResetError, RuntimeError):
                break


def failed_event_response(status_code: int, message: str) -> web.Response:
    """One `failed` event with the HTTP status it stands for, as BinderHub answers an event stream it refuses.

    The response itself is 200: an EventSource cannot read the body of an error
    response, so the reason travels in the event.
    """
    event = {"phase": "failed", "status_code": status_code, "message": message if message.endswith("\n") else message + "\n"}
    return web.Response(
        text=f"data: {json.dumps(event)}\n\n",
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def client_event_json(event: AnyPhaseEvent, build_only: bool, sealer: TokenSealer | None) -> str:
    """The JSON a client receives for one logged phase event (BinderHub's shape).

    The log holds the ready event's token sealed; the client gets it in `token`.
    """
    if isinstance(event, ServerReady) and event.token_sealed:
        token = ""
        if sealer is not None:
            try:
                token = sealer.unseal(event.token_sealed, event.launch_id)
            except SealError:
                log.error("launch %s: the server token does not open with this gateway's key (events.token_key)", event.launch_id)
        event = msgspec.structs.replace(event, token=token)
    data = msgspec.to_builtins(event)
    if isinstance(event, ServerReady):
        data.pop("token_sealed", None)
        if build_only:
            # BinderHub's build-only `ready` names the image as `imageName`.
            data.setdefault("imageName", event.image)
    return json.dumps(data)


def sse_event_id(launch_id: str, seq: int, watch_key: str) -> str:
    """The SSE id of an event: which launch, where in the log, and the key to resume it."""
    return f"{launch_id}:{seq}:{watch_key}"


@dataclass(frozen=True)
class ResumePoint:
    """Where a reconnecting client left off: after log position `after_seq` of `launch_id`."""

    launch_id: str
    after_seq: int
    watch_key: str


def parse_resume_point(last_event_id: str | None) -> ResumePoint | None:
    """The launch and position named by a Last-Event-ID header, or None if it is not one of ours. Pure."""
    if not last_event_id:
        return None
    parts = last_event_id.strip().split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not is_launch_id(parts[0]):
        return None
    return ResumePoint(parts[0], int(parts[1]), parts[2])
