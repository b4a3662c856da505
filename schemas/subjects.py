"""Every NATS subject, stream, durable consumer and header name binderflow uses.

Nothing else in the code base holds a subject literal. All names hang off a
prefix taken from settings, so a test (or a second installation sharing one NATS)
can run the whole pipeline in its own namespace.

Layout, most general token first and ids last:

    <prefix>.cmd.resolve                 ResolveRef commands (resolver's work queue)
    <prefix>.cmd.build                   BuildImage commands (builder's work queue)
    <prefix>.cmd.launch                  StartServer commands (launcher's work queue)
    <prefix>.launch.<launch_id>.events   phase events and facts of one launch
    <prefix>.launch.<launch_id>.log      its build log lines (`building` events)
    <prefix>.repo.<repo_key>.builds      BuildStarted of every build of one repository
    <prefix>.heartbeat.<service>         liveness beacons (core NATS, not stored)

Build log lines have a subject of their own so that analytics, export and
stats can read every launch's phases and facts without wading through logs;
a launch's watchers read `<prefix>.launch.<launch_id>.*`, which keeps one order.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .commands import Command

__all__ = ["Subjects", "MSG_ID_HEADER", "TRACEPARENT_HEADER", "SERVICE_NAMES", "PREFIX_PATTERN", "is_valid_prefix", "repo_key"]

# JetStream de-duplicates publishes that carry the same id within the stream's
# duplicate window: a retried publish never stores an event twice.
MSG_ID_HEADER = "Nats-Msg-Id"
# W3C trace context travels with commands and events, so a launch is one trace.
TRACEPARENT_HEADER = "traceparent"

SERVICE_NAMES = ("gateway", "resolver", "builder", "launcher")

# A prefix is one subject token and part of stream names.
PREFIX_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}\Z"
_PREFIX_RE = re.compile(PREFIX_PATTERN)


def repo_key(repo_url: str) -> str:
    """One subject token naming a repository: a digest of its URL, normalised so
    that `https://host/o/r`, `.../o/r/` and `.../o/r.git` are one repository."""
    normal = repo_url.strip().rstrip("/")
    if normal.endswith(".git"):
        normal = normal[:-4]
    return hashlib.sha256(normal.lower().encode()).hexdigest()[:24]


def is_valid_prefix(prefix: str) -> bool:
    """True when `prefix` is usable as one subject token and inside stream names."""
    return bool(_PREFIX_RE.match(prefix))


@dataclass(frozen=True)
class Subjects:
    """Names for one binderflow namespace."""

    prefix: str = "binderflow"

    def __post_init__(self) -> None:
        if not is_valid_prefix(self.prefix):
            raise ValueError(
                f"subject prefix {self.prefix!r} must be 1-64 lower-case letters, digits, '-' or '_'"
            )

    @property
    def _stream_stem(self) -> str:
        # Stream names may hold '-' and '_', so the prefix maps one-to-one.
        return self.prefix.upper()

    # -- streams -------------------------------------------------------------
    @property
    def commands_stream(self) -> str:
        """File-backed stream holding every command; each service has a durable on it."""
        return f"{self._stream_stem}_COMMANDS"

    @property
    def builds_bucket(self) -> str:
        """Key-value bucket of builds under way (environment -> who builds it): one build per environment."""
        return f"{self._stream_stem}_BUILDS"

    @property
    def events_stream(self) -> str:
        """File-backed stream holding every launch's phase events: the event log."""
        return f"{self._stream_stem}_EVENTS"

    # -- commands ------------------------------------------------------------
    @property
    def all_commands(self) -> str:
        return f"{self.prefix}.cmd.>"

    def commands(self, command_type: type[Command]) -> str:
        """The work-queue subject commands of `command_type` travel on."""
        return f"{self.prefix}.cmd.{command_type.subject_token}"

    def durable(self, command_type: type[Command]) -> str:
        """The durable pull consumer every replica of the service consuming `command_type` shares."""
        return f"{self.prefix}-{command_type.consumer}"

    # -- launch events -------------------------------------------------------
    def launch_events(self, launch_id: str) -> str:
        """Phase events (other than log lines) and facts of one launch."""
        return f"{self.prefix}.launch.{launch_id}.events"

    def launch_log(self, launch_id: str) -> str:
        """Build log lines of one launch."""
        return f"{self.prefix}.launch.{launch_id}.log"

    def launch_all(self, launch_id: str) -> str:
        """Everything of one launch, in order: what a watcher of the launch reads."""
        return f"{self.prefix}.launch.{launch_id}.*"

    def subject_for_phase(self, launch_id: str, phase: str) -> str:
        return self.launch_log(launch_id) if phase == "building" else self.launch_events(launch_id)

    @property
    def all_launch_events(self) -> str:
        """Every launch's phases and facts, without log lines (analytics read this)."""
        return f"{self.prefix}.launch.*.events"

    @property
    def all_launch_subjects(self) -> str:
        return f"{self.prefix}.launch.*.*"

    def repo_builds(self, key: str) -> str:
        """Index of builds of one repository (key: repo_key(repo_url))."""
        return f"{self.prefix}.repo.{key}.builds"

    @property
    def all_repo_builds(self) -> str:
        return f"{self.prefix}.repo.*.builds"

    @property
    def event_log_subjects(self) -> list[str]:
        """What the event-log stream stores."""
        return [self.all_launch_subjects, self.all_repo_builds]

    # -- liveness ------------------------------------------------------------
    def heartbeat(self, service: str) -> str:
        return f"{self.prefix}.heartbeat.{service}"

    @property
    def all_heartbeats(self) -> str:
        return f"{self.prefix}.heartbeat.*"
