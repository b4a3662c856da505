"""Many watchers, one build: who builds an environment, and what its followers see.

Builders coordinate through a JetStream key-value bucket (`Subjects.builds_bucket`):
the key names an environment, the value is a `BuildClaim` saying which launch's
build makes it, on which builder, and when that builder last said it was alive.
A builder that creates the key (atomically) leads the build and renews the claim
while it works; a launch of the same environment that finds a live claim
follows: it copies the leader's build log onto its own launch, from the first
line, until that build ends, and then launches from the environment the leader
built, or fails with the leader's message. A claim nobody renewed for a while is
a crashed builder's: the next launch takes it over and builds.

Everything here is pure (time and ids come in as arguments) so the rules are
tested with plain calls; the NATS edge (the bucket, reading the leader's log)
lives in `handlers.py`.
"""

from __future__ import annotations

import base64
import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import msgspec

from schemas import AnyEvent, BuildEnded, BuildImage, BuildLogged, BuildStarted, ImageBuilt, ImagePushing, LaunchFailed, RepoFetching, ServerReady
from schemas.events import PhaseEvent
from schemas.identity import AttemptStep, follow_event_id, log_build_id, parse_event_id

__all__ = [
    "CLAIM_RENEW_SECONDS",
    "STALE_AFTER_RENEWALS",
    "BuildClaim",
    "ClaimDecision",
    "ClaimState",
    "Relay",
    "LeaderSucceeded",
    "LeaderFailed",
    "LeaderNews",
    "claim_key",
    "encode_claim",
    "decode_claim",
    "is_stale",
    "decide_claim",
    "judge_followed_claim",
    "read_leader_event",
    "relayed_event",
    "follow_started",
    "follow_ended",
    "follow_failed",
]

# A leading builder rewrites its claim this often. A claim not rewritten for
# STALE_AFTER_RENEWALS intervals belongs to a builder that died (or lost NATS):
# three missed renewals, so one slow write or a short reconnect is not a death.
CLAIM_RENEW_SECONDS = 5.0
STALE_AFTER_RENEWALS = 3

# What a builder process claims when the value it found cannot be read: nothing
# alive wrote it, so it counts as abandoned and is taken over.
_UNREADABLE_CLAIM_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)

# JetStream KV keys: letters, digits and `-/_=.`, no empty tokens. Plain names
# (every local environment name) are used as they are; anything else, and any
# name with "=" (the mark of an encoded key), is base64url-encoded behind "=",
# so two different names never share a key.
_PLAIN_KEY_RE = re.compile(r"^[-/_a-zA-Z0-9]+(\.[-/_a-zA-Z0-9]+)*\Z")

# The leader's phases that make up its build log; the rest of its launch
# (launching, ready, its facts) is its own business.
_RELAYED_TYPES = (RepoFetching, BuildLogged, ImagePushing)


class BuildClaim(msgspec.Struct, frozen=True, kw_only=True):
    """Value of a key in the builds bucket: who is building the environment."""

    launch_id: str
    build_id: str
    # The builder process (ServiceRuntime.instance) holding the claim.
    builder: str
    # When the holder last renewed the claim (its wall clock, UTC).
    renewed_at: datetime


_claim_decoder = msgspec.json.Decoder(BuildClaim)
_claim_encoder = msgspec.json.Encoder()


def claim_key(image_name: str) -> str:
    """The bucket key of environment `image_name`: a valid KV key, one per name."""
    if _PLAIN_KEY_RE.match(image_name):
        return image_name
    encoded = base64.urlsafe_b64encode(image_name.encode()).decode().rstrip("=")
    return f"={encoded}"


def encode_claim(claim: BuildClaim) -> bytes:
    return _claim_encoder.encode(claim)


def decode_claim(data: bytes) -> BuildClaim:
    """The claim in a bucket value; an unreadable value decodes as an abandoned claim."""
    try:
        return _claim_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return BuildClaim(launch_id="", build_id="", builder="", renewed_at=_UNREADABLE_CLAIM_TIME)


def is_stale(claim: BuildClaim, now: datetime, stale_after_seconds: float) -> bool:
    """True when the claim's holder has not renewed it for more than `stale_after_seconds`."""
    return now - claim.renewed_at > timedelta(seconds=stale_after_seconds)


class ClaimDecision(enum.Enum):
    """What a BuildImage does about the claim it found on its environment."""

    # No claim: create one (atomically; whoever creates it first leads).
    CLAIM = "claim"
    # Replace the claim found (revision-checked) and build.
    TAKE_OVER = "take_over"
    # Someone else's build is under way: follow it.
    FOLLOW = "follow"


def decide_claim(current: BuildClaim | None, launch_id: str, now: datetime, stale_after_seconds: float) -> ClaimDecision:
    """Lead, take over or follow, given the claim on the environment (None: there is none).

    A claim of this same launch is an earlier attempt of this very command: the
    work queue hands a command to one builder at a time, so that attempt's
    builder is gone (killed, or the command was redelivered after it fell
    silent) and its claim is taken over at once rather than after it goes stale.
    """
    if current is None:
        return ClaimDecision.CLAIM
    if current.launch_id == launch_id or is_stale(current, now, stale_after_seconds):
        return ClaimDecision.TAKE_OVER
    return ClaimDecision.FOLLOW


class ClaimState(enum.Enum):
    """What became of the claim a follower follows, seen while it waits."""

    # Still the same build, still renewed: keep following.
    HELD = "held"
    # Released: the build ended (its end is in the leader's log) or gave up.
    GONE = "gone"
    # Another build holds the environment now (the leader was taken over).
    CHANGED = "changed"
    # Nobody renews it: the leading builder died.
    STALE = "stale"


def judge_followed_claim(followed: BuildClaim, current: BuildClaim | None, now: datetime, stale_after_seconds: float) -> ClaimState:
    """The state of the followed build's claim, given what the bucket holds now."""
    if current is None:
        return ClaimState.GONE
    if (current.launch_id, current.build_id) != (followed.launch_id, followed.build_id):
        return ClaimState.CHANGED
    if is_stale(current, now, stale_after_seconds):
        return ClaimState.STALE
    return ClaimState.HELD


@dataclass(frozen=True, slots=True)
class Relay:
    """A line (or phase) of the followed build's log, to copy onto the follower's launch."""

    event: PhaseEvent


@dataclass(frozen=True, slots=True)
class LeaderSucceeded:
    """The followed build made the environment."""


@dataclass(frozen=True, slots=True)
class LeaderFailed:
    """The followed build failed with a build error; `message` is what its launch was told."""

    message: str


LeaderNews = Relay | LeaderSucceeded | LeaderFailed


def read_leader_event(followed: BuildClaim, event: AnyEvent) -> LeaderNews | None:
    """What one event of the leader's launch means to a follower of build `followed.build_id`.

    Only that build's log is relayed: the leader's launch may hold an earlier
    attempt's lines (its builder died) and, later, its own server's events. The
    build succeeded once the launch is `built` (or `ready` without a server, for
    a build-only launch), or a BuildEnded of the build says so; it failed when
    that build's own `failed` event says so. A BuildEnded with status "failure"
    alone is not an answer: an internal error ends an attempt that is retried,
    and the follower learns of that from the claim being released.
    """
    if isinstance(event, _RELAYED_TYPES):
        return Relay(event) if log_build_id(event) == followed.build_id else None
    if isinstance(event, BuildEnded):
        if event.build_id == followed.build_id and event.status in ("success", "cached"):
            return LeaderSucceeded()
        return None
    if not isinstance(event, (ImageBuilt, ServerReady, LaunchFailed)):
        return None
    key = parse_event_id(event.event_id)
    if key is None or key.launch_id != followed.launch_id or key.writer != "build":
        return None  # the resolver's or the launcher's, not the build's
    match event:
        case ImageBuilt() | ServerReady() if not key.build_id:
            # The launch's one `built` (or build-only `ready`), whichever attempt made it.
            return LeaderSucceeded()
        case LaunchFailed(message=message) if key.build_id == followed.build_id and key.step == "failed":
            return LeaderFailed(message)
    return None


def _follow_id(command: BuildImage, followed: BuildClaim, step: int | AttemptStep) -> str:
    # Named by the followed build and the leader's log position: a follower whose
    # command is redelivered republishes the same ids, and JetStream keeps one copy.
    return follow_event_id(command.launch_id, followed.build_id, step)


def relayed_event(command: BuildImage, followed: BuildClaim, leader_seq: int, event: PhaseEvent, now: datetime) -> PhaseEvent:
    """The leader's log event `event` (at stream sequence `leader_seq`) as an event of the follower's launch."""
    if not isinstance(event, _RELAYED_TYPES):
        raise ValueError(f"only build log events are relayed, not {event.phase!r}")
    return msgspec.structs.replace(event, launch_id=command.launch_id, event_id=_follow_id(command, followed, leader_seq), timestamp=now)


def follow_started(command: BuildImage, followed: BuildClaim, now: datetime) -> BuildStarted:
    """The fact that this launch waits for, and shows, another launch's build of its environment."""
    image = command.repo.image_name
    return BuildStarted(
        launch_id=command.launch_id,
        event_id=_follow_id(command, followed, "started"),
        timestamp=now,
        message=f"Build of {image} already under way; showing its log\n",
        build_id=followed.build_id,
        image_name=image,
        repo_url=command.repo.repo_url,
        log_launch_id=followed.launch_id,
    )


def follow_ended(command: BuildImage, followed: BuildClaim, succeeded: bool, seconds: float, now: datetime) -> BuildEnded:
    """The end of following: "cached" when the leader built the environment (this launch built nothing), else "failure"."""
    return BuildEnded(
        launch_id=command.launch_id,
        event_id=_follow_id(command, followed, "ended"),
        timestamp=now,
        build_id=followed.build_id,
        image_name=command.repo.image_name,
        status="cached" if succeeded else "failure",
        seconds=round(seconds, 3),
        repo_url=command.repo.repo_url,
    )


def follow_failed(command: BuildImage, followed: BuildClaim, message: str, now: datetime) -> LaunchFailed:
    """The follower's launch fails as the leader's did, with the same message."""
    return LaunchFailed(launch_id=command.launch_id, event_id=_follow_id(command, followed, "failed"), timestamp=now, message=message)
