"""Every Prometheus metric of the builder."""

from __future__ import annotations

import enum

from prometheus_client import Counter, Gauge, Histogram

from schemas import BUILD_STATUSES

__all__ = [
    "FollowOutcome",
    "BUILDS",
    "BUILD_SECONDS",
    "BUILDS_IN_PROGRESS",
    "BUILD_LOG_LINES",
    "FOLLOWS",
    "FOLLOWS_IN_PROGRESS",
    "CLAIMS_TAKEN_OVER",
    "preset",
]


class FollowOutcome(enum.Enum):
    """How following another launch's build of the same environment ended."""

    # The leader built it: this launch goes on to launch it.
    SUCCESS = "success"
    # The leader's build failed: this launch fails with its message.
    FAILURE = "failure"
    # The leader went away (crashed, or gave up): this launch claims the build again.
    ABANDONED = "abandoned"


# The `status` label takes schemas.BuildStatus values, as BuildEnded facts do.
BUILDS = Counter("binderflow_builder_builds_total", "Builds finished, by status", ["status"])
BUILD_SECONDS = Histogram(
    "binderflow_builder_build_duration_seconds",
    "Time from build start to built or failed",
    ["status"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
BUILDS_IN_PROGRESS = Gauge("binderflow_builder_builds_in_progress", "Builds running in this process")
BUILD_LOG_LINES = Counter("binderflow_builder_log_lines_total", "Build log lines published")
FOLLOWS = Counter(
    "binderflow_builder_follows_total", "Launches that followed another launch's build of their environment instead of building", ["outcome"]
)
FOLLOWS_IN_PROGRESS = Gauge("binderflow_builder_follows_in_progress", "Launches in this process following another launch's build")
CLAIMS_TAKEN_OVER = Counter(
    "binderflow_builder_claims_taken_over_total", "Build claims taken over from a builder that died or from an earlier attempt of the same launch"
)


def preset() -> None:
    for status in BUILD_STATUSES:
        BUILDS.labels(status)
        BUILD_SECONDS.labels(status)
    for outcome in FollowOutcome:
        FOLLOWS.labels(outcome.value)
