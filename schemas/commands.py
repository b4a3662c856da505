"""Commands: work one service asks another to do, carried on work-queue subjects.

Every command carries the launch it belongs to and the original request, so each
step can emit the fields BinderHub's `ready` event needs without asking anyone.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Union

import msgspec

from .types import SCHEMA_VERSION, CommitSha, EventId, LaunchId, NonEmptyStr

__all__ = [
    "LaunchRequest",
    "ResolvedRepo",
    "Command",
    "ResolveRef",
    "BuildImage",
    "StartServer",
    "AnyCommand",
    "COMMAND_TYPES",
    "decode_command",
    "Heartbeat",
    "decode_heartbeat",
]


class LaunchRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a client asked for, as the gateway received it."""

    provider: NonEmptyStr
    spec: NonEmptyStr
    # BinderHub's binder_launch_host: the public base URL of the gateway, with '/'.
    launch_host: str = ""
    # Origin / host header of the request, for analytics.
    origin: str = ""
    # BinderHub's build_only=true (API-only mode): build the environment, start no
    # server; the launch ends with a `ready` event naming the image. Added at the
    # end with a default: older writers' commands decode as launches.
    build_only: bool = False


class ResolvedRepo(msgspec.Struct, frozen=True, kw_only=True):
    """A repository pinned to one commit, and the environment that serves it."""

    repo_url: NonEmptyStr
    ref: NonEmptyStr
    resolved_ref: CommitSha
    ref_url: str
    clone_url: NonEmptyStr
    image_name: NonEmptyStr
    # BinderHub's binder_request / binder_persistent_request ("v2/<provider>/<spec>").
    binder_request: str
    binder_persistent_request: str
    # How the builder gets the files: "git" (clone_url at resolved_ref), or a data
    # repository's archive ("zenodo", "figshare", "hydroshare", "dataverse", "ckan").
    content_provider: str = "git"


class Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="command"):
    """Envelope of every command.

    Each kind names its work queue (`<prefix>.cmd.<subject_token>`) and the
    service whose replicas consume it; `Subjects.commands` and
    `Subjects.durable` derive the subject and the consumer from the type, so a
    command cannot be published where its consumer does not read.
    """

    subject_token: ClassVar[str]
    consumer: ClassVar[str]

    command_id: EventId
    launch_id: LaunchId
    issued_at: datetime
    request: LaunchRequest
    schema_version: int = SCHEMA_VERSION


class ResolveRef(Command, frozen=True, kw_only=True, tag="resolve_ref"):
    """Resolve the request's ref to a commit and decide: build or launch."""

    subject_token: ClassVar[str] = "resolve"
    consumer: ClassVar[str] = "resolver"


class BuildImage(Command, frozen=True, kw_only=True, tag="build_image"):
    """Build the environment `repo.image_name` from `repo` at its commit."""

    subject_token: ClassVar[str] = "build"
    consumer: ClassVar[str] = "builder"

    repo: ResolvedRepo


class StartServer(Command, frozen=True, kw_only=True, tag="start_server"):
    """Start a Jupyter server from the built environment `repo.image_name`."""

    subject_token: ClassVar[str] = "launch"
    consumer: ClassVar[str] = "launcher"

    repo: ResolvedRepo


AnyCommand = Union[ResolveRef, BuildImage, StartServer]
COMMAND_TYPES: tuple[type[Command], ...] = (ResolveRef, BuildImage, StartServer)
_command_decoder = msgspec.json.Decoder(AnyCommand)


def decode_command(data: bytes) -> AnyCommand:
    """Decode a command; raises msgspec.ValidationError/DecodeError on bad input."""
    return _command_decoder.decode(data)


class Heartbeat(msgspec.Struct, frozen=True, kw_only=True):
    """A liveness beacon each service publishes every few seconds (not stored)."""

    service: str
    instance: str
    pid: int
    http_port: int
    at: datetime
    version: str = ""


_heartbeat_decoder = msgspec.json.Decoder(Heartbeat)


def decode_heartbeat(data: bytes) -> Heartbeat:
    return _heartbeat_decoder.decode(data)
