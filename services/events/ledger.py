"""One summary per launch and per build, folded from the log's phases and facts.

Pure: `LaunchLedger.apply` takes events in log order; export and stats read the
summaries. Only `<prefix>.launch.*.events` is needed (never the build log).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from schemas import AnyEvent, BuildEnded, BuildStarted, BuildStatus, LaunchFailed, LaunchRequested, RefResolved, ServerReady

from .times import as_utc

__all__ = ["LaunchSummary", "BuildSummary", "LaunchLedger", "SUCCESS", "FAILURE"]

# How a launch ended (mybinder.org's `status`): a server (or build-only image), or not.
LaunchStatus = Literal["success", "failure"]
SUCCESS: LaunchStatus = "success"
FAILURE: LaunchStatus = "failure"


@dataclass(slots=True)
class LaunchSummary:
    """A launch as its events tell it; fields stay empty until their event is seen."""

    launch_id: str
    requested_at: datetime | None = None
    provider: str = ""
    spec: str = ""
    origin: str = ""
    request_origin: str = ""
    build_token: bool = False
    build_only: bool = False
    repo_url: str = ""
    ref: str = ""
    resolved_ref: str = ""
    # The first `ready` (success) or `failed` (failure); what came after does not change it.
    ended_at: datetime | None = None
    status: LaunchStatus | Literal[""] = ""

    @property
    def is_finished(self) -> bool:
        return self.ended_at is not None

    @property
    def is_requested(self) -> bool:
        """True when the `requested` fact was seen (so provider and spec are known)."""
        return self.requested_at is not None

    @property
    def seconds_to_ready(self) -> float | None:
        """Seconds from request to a ready server, for successful launches (not build-only ones)."""
        if self.status != SUCCESS or self.build_only or self.requested_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.requested_at).total_seconds()


@dataclass(slots=True)
class BuildSummary:
    """One build: who ran it, for which repository, how it ended."""

    build_id: str
    launch_id: str
    repo_url: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    # "" until its BuildEnded fact is seen.
    status: BuildStatus | Literal[""] = ""
    seconds: float | None = None


class LaunchLedger:
    """Launch and build summaries from events applied in log order."""

    def __init__(self) -> None:
        self.launches: dict[str, LaunchSummary] = {}
        self.builds: dict[str, BuildSummary] = {}

    def launch(self, launch_id: str) -> LaunchSummary:
        found = self.launches.get(launch_id)
        if found is None:
            found = self.launches[launch_id] = LaunchSummary(launch_id)
        return found

    def apply(self, event: AnyEvent) -> None:
        """Fold one event into the summaries; phases that say nothing new are ignored."""
        match event:
            case LaunchRequested():
                launch = self.launch(event.launch_id)
                launch.requested_at = as_utc(event.timestamp)
                launch.provider, launch.spec = event.provider, event.spec
                launch.origin, launch.request_origin = event.origin, event.request_origin
                launch.build_token, launch.build_only = event.build_token, event.build_only
            case RefResolved():
                launch = self.launch(event.launch_id)
                launch.provider = launch.provider or event.provider
                launch.spec = launch.spec or event.spec
                launch.repo_url, launch.ref, launch.resolved_ref = event.repo_url, event.ref, event.resolved_ref
            case ServerReady() | LaunchFailed():
                launch = self.launch(event.launch_id)
                if launch.ended_at is None:
                    launch.ended_at = as_utc(event.timestamp)
                    launch.status = SUCCESS if isinstance(event, ServerReady) else FAILURE
                if isinstance(event, ServerReady) and event.repo_url and not launch.repo_url:
                    launch.repo_url = event.repo_url
            case BuildStarted():
                build = self._build(event.build_id, event.launch_id)
                build.started_at = build.started_at or as_utc(event.timestamp)
                build.repo_url = build.repo_url or event.repo_url
            case BuildEnded():
                build = self._build(event.build_id, event.launch_id)
                build.repo_url = build.repo_url or event.repo_url
                # A build ends once; a later "cached" (a follower finding it done) does not undo a real end.
                if not build.status or build.status == "cached":
                    build.status, build.seconds, build.ended_at = event.status, event.seconds, as_utc(event.timestamp)
            case _:
                pass

    def _build(self, build_id: str, launch_id: str) -> BuildSummary:
        found = self.builds.get(build_id)
        if found is None:
            found = self.builds[build_id] = BuildSummary(build_id, launch_id)
        return found

    def repo_url_of_build(self, build: BuildSummary) -> str:
        """The build's repository: its own field, else the launch that ran it."""
        if build.repo_url:
            return build.repo_url
        launch = self.launches.get(build.launch_id)
        return launch.repo_url if launch is not None else ""
