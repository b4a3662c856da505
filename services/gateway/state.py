"""What every gateway handler shares: settings, NATS, the fan-out, service sightings, the token sealer.

One typed `AppKey` holds it on the aiohttp application; handlers read it with
`state_of(request)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aiohttp import web
from nats.js import JetStreamContext

from schemas import Subjects
from services.runtime.bus import EventPublisher
from services.runtime.sealing import TokenSealer
from services.runtime.settings import Settings

from .fanout import LaunchFanout
from .sightings import ServiceSightings

__all__ = ["GatewayState", "STATE", "state_of"]


@dataclass(frozen=True)
class GatewayState:
    settings: Settings
    subjects: Subjects
    # The event log, for reads that are not a launch's stream (does it exist, its log).
    js: JetStreamContext
    publisher: EventPublisher
    fanout: LaunchFanout
    sightings: ServiceSightings
    # Whether the NATS connection is up now (/health).
    nats_connected: Callable[[], bool]
    # Unseals ready tokens and signs watch keys; None: tokens stay sealed, no resume.
    sealer: TokenSealer | None = None


STATE = web.AppKey("gateway_state", GatewayState)


def state_of(request: web.Request) -> GatewayState:
    return request.app[STATE]
