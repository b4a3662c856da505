"""Phase events: the facts a launch goes through, in BinderHub's public shape.

On the wire each event is the JSON object BinderHub clients already read,
`{"phase": ..., "message": ...}` plus the phase's own fields, with an envelope
(launch id, event id, timestamp, schema version) that older clients ignore.

Evolution is additive: new fields get a default and go at the end; unknown fields
are never forbidden, so old readers accept what new writers publish.
"""

from __future__ import annotations

from datetime import datetime
from typing import Union

import msgspec

from .types import SCHEMA_VERSION, EventId, LaunchId

__all__ = [
    "PhaseEvent",
    "BuildWaiting",
    "RepoFetching",
    "BuildLogged",
    "ImagePushing",
    "ImageBuilt",
    "ServerLaunching",
    "ServerReady",
    "LaunchFailed",
    "AnyPhaseEvent",
    "PHASES",
    "TERMINAL_PHASES",
    "decode_phase_event",
    "encode_event",
    "event_to_wire",
]


class PhaseEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="phase"):
    """Envelope every phase event carries."""

    launch_id: LaunchId
    event_id: EventId
    timestamp: datetime
    message: str = ""
    schema_version: int = SCHEMA_VERSION

    @property
    def phase(self) -> str:
        return type(self).__struct_config__.tag  # type: ignore[return-value]


class BuildWaiting(PhaseEvent, frozen=True, kw_only=True, tag="waiting"):
    """The build is queued and waits for a builder."""


class RepoFetching(PhaseEvent, frozen=True, kw_only=True, tag="fetching"):
    """A builder is fetching the repository contents."""


class BuildLogged(PhaseEvent, frozen=True, kw_only=True, tag="building"):
    """One line of build output (the message), sent while the build runs."""


class ImagePushing(PhaseEvent, frozen=True, kw_only=True, tag="pushing"):
    """The built image is being pushed to the environment store or registry."""

    progress: dict[str, int] = {}


class ImageBuilt(PhaseEvent, frozen=True, kw_only=True, tag="built"):
    """The environment exists; a launch follows unless only a build was asked for."""

    image_name: str = msgspec.field(name="imageName")


class ServerLaunching(PhaseEvent, frozen=True, kw_only=True, tag="launching"):
    """A launcher is starting a Jupyter server."""


class ServerReady(PhaseEvent, frozen=True, kw_only=True, tag="ready"):
    """The server answers; fields are the ones BinderHub's clients read."""

    url: str
    token: str
    image: str
    repo_url: str
    binder_ref_url: str
    binder_launch_host: str
    binder_request: str
    binder_persistent_request: str


class LaunchFailed(PhaseEvent, frozen=True, kw_only=True, tag="failed"):
    """The launch ended without a server; the message says why, for a person."""


AnyPhaseEvent = Union[
    BuildWaiting,
    RepoFetching,
    BuildLogged,
    ImagePushing,
    ImageBuilt,
    ServerLaunching,
    ServerReady,
    LaunchFailed,
]

# BinderHub's order; a launch visits a subsequence of it.
PHASES = ("waiting", "fetching", "building", "pushing", "built", "launching", "ready", "failed")
TERMINAL_PHASES = frozenset({"ready", "failed"})

_decoder = msgspec.json.Decoder(AnyPhaseEvent)
_encoder = msgspec.json.Encoder()


def decode_phase_event(data: bytes | str) -> AnyPhaseEvent:
    """Decode one phase event; raises msgspec.ValidationError/DecodeError on bad input."""
    return _decoder.decode(data)


def encode_event(event: msgspec.Struct) -> bytes:
    """JSON bytes of any event or command."""
    return _encoder.encode(event)


def event_to_wire(event: AnyPhaseEvent) -> str:
    """The JSON text sent to Server-Sent Events clients (BinderHub's shape)."""
    return _encoder.encode(event).decode()
