"""Phase events: the facts a launch goes through, in BinderHub's public shape.

On the wire each event is the JSON object BinderHub clients already read,
`{"phase": ..., "message": ...}` plus the phase's own fields, with an envelope
(launch id, event id, timestamp, schema version) that older clients ignore.

Evolution is additive: new fields get a default and go at the end; unknown fields
are never forbidden, so old readers accept what new writers publish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeGuard, Union, get_args

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
    "LaunchRequested",
    "RefResolved",
    "BuildStarted",
    "BuildEnded",
    "AnyPhaseEvent",
    "AnyEvent",
    "BuildStatus",
    "BUILD_STATUSES",
    "LoggedEvent",
    "FACT_KINDS",
    "PHASES",
    "TERMINAL_PHASES",
    "decode_phase_event",
    "is_phase_event",
    "decode_event",
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

    # The build attempt whose log this is (schema 3; "" in older events, whose
    # event id names it: schemas.identity.parse_event_id).
    build_id: str = ""


class BuildLogged(PhaseEvent, frozen=True, kw_only=True, tag="building"):
    """One line of build output (the message), sent while the build runs."""

    build_id: str = ""


class ImagePushing(PhaseEvent, frozen=True, kw_only=True, tag="pushing"):
    """The built image is being pushed to the environment store or registry."""

    progress: dict[str, int] = {}
    build_id: str = ""


class ImageBuilt(PhaseEvent, frozen=True, kw_only=True, tag="built"):
    """The environment exists; a launch follows unless only a build was asked for."""

    image_name: str = msgspec.field(name="imageName")


class ServerLaunching(PhaseEvent, frozen=True, kw_only=True, tag="launching"):
    """A launcher is starting a Jupyter server."""


class ServerReady(PhaseEvent, frozen=True, kw_only=True, tag="ready"):
    """The server answers; fields are the ones BinderHub's clients read.

    In the event log `token` is empty and `token_sealed` holds the Jupyter token
    encrypted for the gateway (schema version 2): analytics consumers read the
    log, and must not be able to open other people's servers. The gateway
    unseals it into `token` for the client that launched. Version 1 events
    carried the token in plain text and still decode.
    """

    url: str
    token: str
    image: str
    repo_url: str
    binder_ref_url: str
    binder_launch_host: str
    binder_request: str
    binder_persistent_request: str
    token_sealed: str = ""


class LaunchFailed(PhaseEvent, frozen=True, kw_only=True, tag="failed"):
    """The launch ended without a server; the message says why, for a person."""


# -- launch facts -----------------------------------------------------------
# Facts are not BinderHub phases: clients never see them (the gateway forwards
# PHASES only). They make the log answer questions on its own: which repository
# a launch was for, what it resolved to, how long its build took. Analytics,
# export and stats read them instead of the (bulky) build log.


class LaunchRequested(PhaseEvent, frozen=True, kw_only=True, tag="requested"):
    """A gateway accepted a launch request (the first fact of every launch)."""

    provider: str
    spec: str
    # Host of the Binder that served the request (mybinder's `origin`).
    origin: str = ""
    # Origin header of the page that asked, when a browser sent one (`request_origin`).
    request_origin: str = ""
    build_token: bool = False
    build_only: bool = False


class RefResolved(PhaseEvent, frozen=True, kw_only=True, tag="resolved"):
    """The resolver pinned the request to a commit and named its environment."""

    provider: str
    spec: str
    repo_url: str
    ref: str
    resolved_ref: str
    image_name: str
    is_built: bool = False


class BuildStarted(PhaseEvent, frozen=True, kw_only=True, tag="build_started"):
    """A builder took on building `image_name` for this launch (or followed a build under way)."""

    build_id: str
    image_name: str
    repo_url: str = ""
    # The launch whose build log holds the lines: this one, or the one followed.
    log_launch_id: str = ""


# How a build attempt ended: it made the environment, it failed, or it found the
# environment made already (by another build, or one that it followed).
BuildStatus = Literal["success", "failure", "cached"]
BUILD_STATUSES: tuple[BuildStatus, ...] = get_args(BuildStatus)


class BuildEnded(PhaseEvent, frozen=True, kw_only=True, tag="build_ended"):
    """A build attempt ended, with its status."""

    build_id: str
    image_name: str
    status: BuildStatus
    seconds: float
    repo_url: str = ""


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

# Everything the event log holds (typing flattens the nested union).
AnyEvent = Union[AnyPhaseEvent, LaunchRequested, RefResolved, BuildStarted, BuildEnded]

# BinderHub's order; a launch visits a subsequence of it. Only these reach clients.
PHASES = ("waiting", "fetching", "building", "pushing", "built", "launching", "ready", "failed")
TERMINAL_PHASES = frozenset({"ready", "failed"})
_PHASE_EVENT_TYPES: tuple[type, ...] = get_args(AnyPhaseEvent)
FACT_KINDS = ("requested", "resolved", "build_started", "build_ended")

def is_phase_event(event: AnyEvent) -> TypeGuard[AnyPhaseEvent]:
    """True for BinderHub's phases (what clients see), False for launch facts."""
    return isinstance(event, _PHASE_EVENT_TYPES)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event and its position in the event log: its JetStream stream sequence,
    the same in every process that reads the log, so it names a point to resume from."""

    seq: int
    event: AnyEvent


_decoder = msgspec.json.Decoder(AnyPhaseEvent)
_any_decoder = msgspec.json.Decoder(AnyEvent)
_encoder = msgspec.json.Encoder()


def decode_phase_event(data: bytes | str) -> AnyPhaseEvent:
    """Decode one phase event; raises msgspec.ValidationError/DecodeError on bad input."""
    return _decoder.decode(data)


def decode_event(data: bytes | str) -> AnyEvent:
    """Decode anything stored in the event log: a phase event or a launch fact."""
    return _any_decoder.decode(data)


def encode_event(event: msgspec.Struct) -> bytes:
    """JSON bytes of any event or command."""
    return _encoder.encode(event)


def event_to_wire(event: AnyPhaseEvent) -> str:
    """The JSON text sent to Server-Sent Events clients (BinderHub's shape)."""
    return _encoder.encode(event).decode()
