"""The builder's decisions as pure functions: progress in, phase events out."""

from __future__ import annotations

from datetime import datetime

from schemas import BuildEnded, BuildImage, BuildLogged, BuildStarted, BuildStatus, ImageBuilt, ImagePushing, LaunchFailed, RepoFetching, ServerReady, StartServer
from schemas.events import PhaseEvent
from schemas.identity import build_event_id, command_id, launch_build_id
from services.runtime.build_only import build_only_ready_event

from .executors.base import BuildFinished, BuildProgress, LogLine, PhaseChanged

__all__ = [
    "event_for_progress",
    "start_after_build",
    "build_failed",
    "build_only_ready",
    "build_started",
    "build_ended",
    "MAX_LOG_LINE_CHARS",
    "split_log_text",
    "LogBudget",
]


def event_for_progress(command: BuildImage, build_id: str, seq: int, progress: BuildProgress, now: datetime) -> PhaseEvent:
    """The phase event one piece of build progress becomes.

    Event ids name the build attempt and the position in it, so a publish retried
    after a lost ack is stored once, while a second attempt's log stays visible.
    """
    lid = command.launch_id
    event_id = build_event_id(lid, build_id, seq)
    match progress:
        case LogLine(text=text):
            return BuildLogged(launch_id=lid, event_id=event_id, timestamp=now, message=text + "\n", build_id=build_id)
        case PhaseChanged(phase="fetching", message=message):
            return RepoFetching(launch_id=lid, event_id=event_id, timestamp=now, message=message, build_id=build_id)
        case PhaseChanged(phase="pushing", message=message):
            return ImagePushing(launch_id=lid, event_id=event_id, timestamp=now, message=message, build_id=build_id)
        case PhaseChanged(message=message):
            return BuildLogged(launch_id=lid, event_id=event_id, timestamp=now, message=message, build_id=build_id)
        case BuildFinished(was_cached=was_cached) if command.request.build_only:
            # BinderHub's build_only: `ready` instead of `built`, and no server follows.
            return build_only_ready(command, was_cached, now)
        case BuildFinished(image_name=image_name, was_cached=was_cached):
            # One `built` per launch, whichever attempt gets there: a build redelivered
            # after its builder died just before acking republishes the same id.
            event_id = launch_build_id(lid, "built")
            message = "Found built image, launching...\n" if was_cached else "Built image, launching...\n"
            return ImageBuilt(launch_id=lid, event_id=event_id, timestamp=now, image_name=image_name, message=message)
    raise TypeError(f"unknown build progress {progress!r}")


def start_after_build(command: BuildImage, now: datetime) -> StartServer:
    lid = command.launch_id
    return StartServer(command_id=command_id(lid, "start"), launch_id=lid, issued_at=now, request=command.request, repo=command.repo)


def build_failed(command: BuildImage, build_id: str, reason: str, now: datetime) -> LaunchFailed:
    lid = command.launch_id
    return LaunchFailed(
        launch_id=lid,
        event_id=build_event_id(lid, build_id, "failed"),
        timestamp=now,
        message=f"Build failed: {reason.rstrip()}\n",
    )


def build_only_ready(command: BuildImage, was_cached: bool, now: datetime) -> ServerReady:
    """The end of a build-only launch: BinderHub's `ready` naming the image, with no server.

    Its id is fixed per launch, as `built`'s is, so a redelivered build stores it once.
    """
    lid = command.launch_id
    message = "Done! Found built image\n" if was_cached else "Done! Image built\n"
    return build_only_ready_event(lid, launch_build_id(lid, "ready"), command.request, command.repo, message, now)


def build_started(command: BuildImage, build_id: str, now: datetime) -> BuildStarted:
    """The fact that build attempt `build_id` of this launch began; its log is on this launch.

    Its id names the attempt, so a publish retried within the attempt is stored once.
    """
    lid = command.launch_id
    image = command.repo.image_name
    return BuildStarted(
        launch_id=lid,
        event_id=build_event_id(lid, build_id, "started"),
        timestamp=now,
        message=f"Building {image}\n",
        build_id=build_id,
        image_name=image,
        repo_url=command.repo.repo_url,
        log_launch_id=lid,
    )


def build_ended(command: BuildImage, build_id: str, status: BuildStatus, seconds: float, now: datetime, reason: str = "") -> BuildEnded:
    """The fact that build attempt `build_id` ended, and how.

    `reason` (for a failure) becomes the message, so the log says why on its own.
    """
    lid = command.launch_id
    return BuildEnded(
        launch_id=lid,
        event_id=build_event_id(lid, build_id, "ended"),
        timestamp=now,
        message=reason,
        build_id=build_id,
        image_name=command.repo.image_name,
        status=status,
        seconds=round(seconds, 3),
        repo_url=command.repo.repo_url,
    )


# -- bounded build logs ------------------------------------------------------

# Longest piece of one line published as one event. NATS refuses messages over its
# max_payload (1 MiB by default) and JSON escaping can make a line up to six times
# longer: a longer line is split, so one line can never stall a build.
MAX_LOG_LINE_CHARS = 16 * 1024


def split_log_text(text: str, max_chars: int = MAX_LOG_LINE_CHARS) -> list[str]:
    """`text` in pieces of at most `max_chars` characters (one piece when it fits; [""] for "")."""
    if len(text) <= max_chars:
        return [text]
    return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]


class LogBudget:
    """How much of one build's output its log shows: `max_lines` lines and `max_bytes` bytes.

    The event log is shared by every launch: a build printing without end must
    not push other launches' events out of it. Past the budget, output is still
    read (the build goes on) but not published; the log says so once when it
    starts dropping and counts what it dropped at the end.
    """

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.lines = 0
        self.bytes = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0

    def admit(self, text: str) -> bool:
        """Whether a line of `text` fits; counts it either way."""
        size = len(text.encode()) + 1
        if self.dropped_lines == 0 and self.lines < self.max_lines and self.bytes + size <= self.max_bytes:
            self.lines += 1
            self.bytes += size
            return True
        self.dropped_lines += 1
        self.dropped_bytes += size
        return False

    @property
    def is_over(self) -> bool:
        return self.dropped_lines > 0

    def notice(self) -> str:
        """The line that says output is no longer shown (published once, at the first dropped line)."""
        return (
            f"[binderflow] This build's output went over what its log shows ({self.max_lines} lines, "
            f"{self.max_bytes} bytes): the rest is not shown; the build goes on."
        )

    def summary(self) -> str:
        """The line that says how much was not shown (published when the build ends)."""
        return f"[binderflow] {self.dropped_lines} more lines ({self.dropped_bytes} bytes) of build output were not shown."
