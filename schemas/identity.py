"""Event and command ids: who wrote a message, for which launch and build, at which step.

An id is also the message's `Nats-Msg-Id`, the key JetStream de-duplicates on
within its window. A publish retried after a lost ack, or a command redelivered
to another replica, must give the same id again; two different events never
share one. So ids are made only from what the writer knows for certain (the
launch, the step, the build attempt, a position), never from clocks, and only
here: every writer builds its ids with these functions, and a reader that needs
to know what an id says asks `parse_event_id`.

The grammar, dot-separated (launch ids and build ids hold no dots):

    <launch>.gateway.requested             the gateway accepted the request
    <launch>.resolver.<step>               waiting, built, ready, failed, notice, resolved
    <launch>.build.<build>.<n>             the n-th progress event of build attempt <build>
    <launch>.build.<build>.<step>          started, ended, failed (of that attempt)
    <launch>.build.<step>                  built, ready: once per launch, whichever attempt ends it
    <launch>.follow.<build>.<n>            a follower's copy of the followed build's event
                                           at stream sequence <n>
    <launch>.follow.<build>.<step>         started, ended, failed (of following <build>)
    <launch>.launch.<step>                 launching, ready, failed (the launcher)
    <launch>.<command>                     commands: resolve, build, start
    <id>.index                             a copy in a repository's build index
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .events import AnyEvent, BuildLogged, ImagePushing, RepoFetching
from .types import LAUNCH_ID_PATTERN

__all__ = [
    "Writer",
    "EventKey",
    "GIVE_UP_BUILD_ID",
    "is_launch_id",
    "requested_id",
    "resolver_event_id",
    "build_event_id",
    "launch_build_id",
    "follow_event_id",
    "launcher_event_id",
    "command_id",
    "index_msg_id",
    "parse_event_id",
    "log_build_id",
]

Writer = Literal["gateway", "resolver", "build", "follow", "launch"]
ResolverStep = Literal["waiting", "built", "ready", "failed", "notice", "resolved"]
AttemptStep = Literal["started", "ended", "failed"]
LaunchBuildStep = Literal["built", "ready"]
LauncherStep = Literal["launching", "ready", "failed"]
CommandKind = Literal["resolve", "build", "start"]

# The build id of the failure a builder reports when it gives up on a command
# (after its last try): not any attempt's own.
GIVE_UP_BUILD_ID = "final"

_LAUNCH_ID_RE = re.compile(LAUNCH_ID_PATTERN)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\Z")


def is_launch_id(text: str) -> bool:
    """True when `text` is a well-formed launch id (one subject token)."""
    return bool(_LAUNCH_ID_RE.match(text))


def _token(value: str, what: str) -> str:
    if not _TOKEN_RE.match(value):
        raise ValueError(f"{what} {value!r} cannot be part of an event id")
    return value


@dataclass(frozen=True, slots=True)
class EventKey:
    """What an event id says. `position` is set for numbered build events, `step` otherwise."""

    launch_id: str
    writer: Writer
    build_id: str = ""
    step: str = ""
    position: int | None = None


def requested_id(launch_id: str) -> str:
    return f"{launch_id}.gateway.requested"


def resolver_event_id(launch_id: str, step: ResolverStep) -> str:
    return f"{launch_id}.resolver.{step}"


def build_event_id(launch_id: str, build_id: str, step: int | AttemptStep) -> str:
    """An event of build attempt `build_id`: its `step`-th progress event, or a named step."""
    return f"{launch_id}.build.{_token(build_id, 'build id')}.{step}"


def launch_build_id(launch_id: str, step: LaunchBuildStep) -> str:
    """The one `built` (or build-only `ready`) of a launch: a build redelivered after its
    builder died just before acking republishes the same id, so the launch has one."""
    return f"{launch_id}.build.{step}"


def follow_event_id(launch_id: str, followed_build_id: str, step: int | AttemptStep) -> str:
    """An event of a launch following build `followed_build_id` (numbered by the leader's
    stream sequence, so a redelivered follower republishes the same ids)."""
    return f"{launch_id}.follow.{_token(followed_build_id, 'build id')}.{step}"


def launcher_event_id(launch_id: str, step: LauncherStep) -> str:
    return f"{launch_id}.launch.{step}"


def command_id(launch_id: str, kind: CommandKind) -> str:
    return f"{launch_id}.{kind}"


def index_msg_id(event_id: str) -> str:
    """The Nats-Msg-Id of an event's copy in its repository's build index."""
    return f"{event_id}.index"


def _step(token: str) -> tuple[str, int | None]:
    return ("", int(token)) if token.isdigit() else (token, None)


def parse_event_id(event_id: str) -> EventKey | None:
    """What `event_id` says, or None when it is not an event id of this grammar. Pure."""
    tokens = event_id.split(".")
    if len(tokens) < 3 or not is_launch_id(tokens[0]):
        return None
    launch_id, writer, rest = tokens[0], tokens[1], tokens[2:]
    if writer == "gateway" and rest == ["requested"]:
        return EventKey(launch_id, "gateway", step="requested")
    if writer in ("resolver", "launch") and len(rest) == 1:
        return EventKey(launch_id, "resolver" if writer == "resolver" else "launch", step=rest[0])
    if writer == "build" and len(rest) == 1:
        return EventKey(launch_id, "build", step=rest[0])
    if writer in ("build", "follow") and len(rest) == 2 and rest[0] and rest[1]:
        step, position = _step(rest[1])
        return EventKey(launch_id, "build" if writer == "build" else "follow", build_id=rest[0], step=step, position=position)
    return None


def log_build_id(event: AnyEvent) -> str:
    """The build attempt a build log event (fetching, building, pushing) belongs to; "" for other events.

    Schema 3 events carry it in `build_id`; older ones only in their event id.
    A follower's copy of another launch's line keeps the line's own build id.
    """
    if not isinstance(event, (RepoFetching, BuildLogged, ImagePushing)):
        return ""
    if event.build_id:
        return event.build_id
    key = parse_event_id(event.event_id)
    return key.build_id if key is not None and key.writer == "build" else ""
