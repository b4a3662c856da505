"""Entry point of the gateway service."""

from __future__ import annotations

import logging

from aiohttp import web

from services.runtime.sealing import load_sealer
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings

from .app import GatewayState, make_app
from .fanout import LaunchFanout
from .health import ServiceSightings

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    g = settings.gateway
    async with ServiceRuntime("gateway", settings, http_port=None) as rt:
        sightings = ServiceSightings(g.service_stale_after_seconds)

        async def on_heartbeat(msg) -> None:  # type: ignore[no-untyped-def]
            sightings.record(msg.data)

        await rt.nc.subscribe(rt.subjects.all_heartbeats, cb=on_heartbeat)
        state = GatewayState(
            rt.subjects,
            rt.publisher,
            LaunchFanout(rt.nc, rt.subjects),
            sightings,
            lambda: rt.nc.is_connected,
            public_url=g.public_url,
            heartbeat_interval_seconds=g.heartbeat_interval_seconds,
            settings=settings,
            sealer=load_sealer(settings),
        )
        runner = web.AppRunner(make_app(state), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, g.host, g.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        rt.http_port = port
        log.info("gateway listening on http://%s:%d", g.host, port)
        try:
            await rt.stopping.wait()
        finally:
            await runner.cleanup()
