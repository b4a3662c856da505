"""BinderHub's build and launch metrics, derived from the phase events of one launch.

BinderHub measures builds and launches inside its /build handler. binderflow's
gateway sees the same story as phase events, so a small state machine per served
launch turns (phase, arrival time) into the observations BinderHub would make:

- a build starts at the first build phase (`waiting`, `fetching`, `building`,
  `pushing`) and ends at `built` (success), at a build-only `ready` (success) or
  at `failed` (failure): `binderhub_build_time_seconds{status}` and
  `binderhub_build_count{status,provider,repo}`;
- a launch is in progress from `built` (or the first `launching`) until `ready`
  or `failed`; its time runs from the first `launching`, when a server is being
  started, to the end: `binderhub_launch_time_seconds{status,retries}` (retries
  "0" on success, "-1" on failure, as BinderHub) and
  `binderhub_launch_count{status,provider,repo}`;
- `binderhub_inprogress_builds` and `binderhub_inprogress_launches` follow both;
- a stream that ends early (the client left) releases the gauges and records
  nothing else, as BinderHub's handler does when its client disconnects.

Failures before a build or launch started (a bad spec, an unknown ref, a refused
request) are no build and no launch, and observe nothing.

Pure: no clock and no prometheus here; metrics.record_observations records what this says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Metric", "Observation", "LaunchMetrics", "BUILD_PHASES"]

BUILD_PHASES = frozenset({"waiting", "fetching", "building", "pushing"})


class Metric(str, Enum):
    BUILD_TIME = "binderhub_build_time_seconds"
    BUILD_COUNT = "binderhub_build_count"
    BUILDS_INPROGRESS = "binderhub_inprogress_builds"
    LAUNCH_TIME = "binderhub_launch_time_seconds"
    LAUNCH_COUNT = "binderhub_launch_count"
    LAUNCHES_INPROGRESS = "binderhub_inprogress_launches"


@dataclass(frozen=True)
class Observation:
    """Observe `value` on `metric` with `labels`: seconds for a histogram, an increment otherwise."""

    metric: Metric
    value: float
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class LaunchMetrics:
    """What one launch contributes to BinderHub's metrics, event by event.

    `provider` is the provider's display name ("GitHub", "Git", ...) and `repo`
    the repository URL, BinderHub's label values.
    """

    provider: str
    repo: str
    build_started: float | None = None
    launch_started: float | None = None
    launch_timer: float | None = None
    finished: bool = False

    def _repo_labels(self, status: str) -> dict[str, str]:
        return {"status": status, "provider": self.provider, "repo": self.repo}

    def _end_build(self, status: str, at: float) -> list[Observation]:
        assert self.build_started is not None
        seconds = max(0.0, at - self.build_started)
        self.build_started = None
        return [
            Observation(Metric.BUILD_TIME, seconds, {"status": status}),
            Observation(Metric.BUILD_COUNT, 1, self._repo_labels(status)),
            Observation(Metric.BUILDS_INPROGRESS, -1),
        ]

    def _start_launch(self, at: float) -> list[Observation]:
        if self.launch_started is not None:
            return []
        self.launch_started = at
        return [Observation(Metric.LAUNCHES_INPROGRESS, 1)]

    def _end_launch(self, status: str, at: float) -> list[Observation]:
        assert self.launch_started is not None
        begun = self.launch_timer if self.launch_timer is not None else self.launch_started
        seconds = max(0.0, at - begun)
        self.launch_started = self.launch_timer = None
        return [
            Observation(Metric.LAUNCH_TIME, seconds, {"status": status, "retries": "0" if status == "success" else "-1"}),
            Observation(Metric.LAUNCH_COUNT, 1, self._repo_labels(status)),
            Observation(Metric.LAUNCHES_INPROGRESS, -1),
        ]

    def on_event(self, phase: str, at: float) -> list[Observation]:
        """Observations due when an event of `phase` arrives at time `at` (seconds, any clock)."""
        if self.finished:
            return []
        out: list[Observation] = []
        if phase in BUILD_PHASES:
            if self.build_started is None and self.launch_started is None:
                self.build_started = at
                out.append(Observation(Metric.BUILDS_INPROGRESS, 1))
        elif phase == "built":
            if self.build_started is not None:
                out += self._end_build("success", at)
            out += self._start_launch(at)
        elif phase == "launching":
            if self.build_started is not None:
                # A launch began without a `built` in between: the build is over.
                out += self._end_build("success", at)
            out += self._start_launch(at)
            if self.launch_timer is None:
                self.launch_timer = at
        elif phase == "ready":
            self.finished = True
            if self.build_started is not None:
                # Build only: `ready` ends the build and nothing is launched.
                out += self._end_build("success", at)
            if self.launch_started is not None:
                out += self._end_launch("success", at)
        elif phase == "failed":
            self.finished = True
            if self.build_started is not None:
                out += self._end_build("failure", at)
            if self.launch_started is not None:
                out += self._end_launch("failure", at)
        return out

    def on_close(self) -> list[Observation]:
        """Observations due when the stream ends: gauges of anything unfinished are released."""
        out: list[Observation] = []
        if self.build_started is not None:
            out.append(Observation(Metric.BUILDS_INPROGRESS, -1))
        if self.launch_started is not None:
            out.append(Observation(Metric.LAUNCHES_INPROGRESS, -1))
        self.build_started = self.launch_started = self.launch_timer = None
        self.finished = True
        return out
