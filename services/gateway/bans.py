"""BinderHub's `ban_networks` on every request: a middleware around admission's rules."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from .admission import Network, banned_by
from .sse import failed_event_response

__all__ = ["ban_middleware", "UNBANNED_PATHS"]

log = logging.getLogger(__name__)

# Paths a banned network may still reach: version checks (as BinderHub, for
# federation health checks) and the operators' own probes and scrapes.
UNBANNED_PATHS = frozenset({"/versions", "/health", "/metrics"})

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def ban_middleware(networks: list[tuple[Network, str]]) -> Middleware:
    """403 for requests from `networks`, as one `failed` event on an event stream."""

    @web.middleware
    async def ban_networks(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path in UNBANNED_PATHS:
            return await handler(request)
        match = banned_by(request.remote, networks)
        if match is None:
            return await handler(request)
        network, message = match
        log.warning("refused request from %s (banned network %s: %s)", request.remote, network, message)
        text = f"Requests from {message} are not allowed"
        if request.path.startswith("/build/"):
            # An event stream cannot show an HTTP error to its reader: like BinderHub,
            # answer with one `failed` event carrying the status.
            return failed_event_response(403, text)
        raise web.HTTPForbidden(text=text + "\n")

    return ban_networks
