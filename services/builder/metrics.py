"""Every Prometheus metric of the builder."""

from __future__ import annotations

import enum

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["BuildStatus", "BUILDS", "BUILD_SECONDS", "BUILDS_IN_PROGRESS", "BUILD_LOG_LINES", "preset"]


class BuildStatus(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    CACHED = "cached"


BUILDS = Counter("binderflow_builder_builds_total", "Builds finished, by status", ["status"])
BUILD_SECONDS = Histogram(
    "binderflow_builder_build_duration_seconds",
    "Time from build start to built or failed",
    ["status"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
BUILDS_IN_PROGRESS = Gauge("binderflow_builder_builds_in_progress", "Builds running in this process")
BUILD_LOG_LINES = Counter("binderflow_builder_log_lines_total", "Build log lines published")


def preset() -> None:
    for status in BuildStatus:
        BUILDS.labels(status.value)
        BUILD_SECONDS.labels(status.value)
