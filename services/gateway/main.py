"""Entry point of the gateway service."""

from __future__ import annotations

import logging

from aiohttp import web
from nats.aio.msg import Msg

from services.runtime.sealing import load_sealer
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings

from .app import make_app
from .fanout import LaunchFanout
from .sightings import ServiceSightings
from .state import GatewayState

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    g = settings.gateway
    async with ServiceRuntime("gateway", settings, http_port=None) as rt:
        sightings = ServiceSightings(g.service_stale_after_seconds)

        async def on_heartbeat(msg: Msg) -> None:
            sightings.record(msg.data)

        await rt.nc.subscribe(rt.subjects.all_heartbeats, cb=on_heartbeat)
        state = GatewayState(
            settings=settings,
            subjects=rt.subjects,
            js=rt.js,
            publisher=rt.publisher,
            fanout=LaunchFanout(rt.js, rt.subjects),
            sightings=sightings,
            nats_connected=lambda: rt.nc.is_connected,
            sealer=load_sealer(settings),
        )
        runner = web.AppRunner(make_app(state), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, g.host, g.port)
        await site.start()
        rt.http_port = runner.addresses[0][1]
        log.info("gateway listening on http://%s:%d", g.host, rt.http_port)
        try:
            await rt.stopping.wait()
        finally:
            await runner.cleanup()
