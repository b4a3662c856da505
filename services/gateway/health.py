"""The gateway's own operations endpoints: /health (is the pipeline there?) and /metrics."""

from __future__ import annotations

import os

from aiohttp import web

from services.runtime.service import metrics_response

from .state import state_of

__all__ = ["add_health_routes"]


async def health(request: web.Request) -> web.Response:
    """200 when NATS and every service were seen recently, else 503; each service's last heartbeat."""
    state = state_of(request)
    services = state.sightings.report()
    nats_ok = state.nats_connected()
    ok = nats_ok and all(s["ok"] for s in services.values())
    body = {
        "status": "ok" if ok else "unhealthy",
        "service": "gateway",
        "pid": os.getpid(),
        "checks": {"nats": nats_ok, "services": services, "launches_watched": state.fanout.launches_watched},
    }
    return web.json_response(body, status=200 if ok else 503)


def add_health_routes(app: web.Application) -> None:
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_response)
