"""Every Prometheus metric of the launcher."""

from __future__ import annotations

import enum

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["LaunchStatus", "LAUNCHES", "LAUNCH_SECONDS", "SERVERS_RUNNING", "SERVERS_CULLED", "preset"]


class LaunchStatus(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


LAUNCHES = Counter("binderflow_launcher_launches_total", "Server starts, by status", ["status"])
LAUNCH_SECONDS = Histogram(
    "binderflow_launcher_launch_duration_seconds",
    "Time from StartServer to the server answering",
    ["status"],
    buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120),
)
SERVERS_RUNNING = Gauge("binderflow_launcher_servers_running", "Jupyter servers this launcher runs")
SERVERS_CULLED = Counter("binderflow_launcher_servers_culled_total", "Servers stopped for idleness, age or exit")


def preset() -> None:
    for status in LaunchStatus:
        LAUNCHES.labels(status.value)
        LAUNCH_SECONDS.labels(status.value)
