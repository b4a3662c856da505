"""Prometheus metrics shared by every service (each service adds its own in its metrics.py)."""

from __future__ import annotations

import enum

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["WorkerOutcome", "WORKER_COMMANDS", "WORKER_COMMAND_SECONDS", "SERVICE_UP", "preset_worker_labels"]


class WorkerOutcome(enum.Enum):
    DONE = "done"
    RETRIED = "retried"
    GAVE_UP = "gave_up"
    MALFORMED = "malformed"
    REQUEUED = "requeued"


WORKER_COMMANDS = Counter(
    "binderflow_worker_commands_total",
    "Commands handled by a worker service, by outcome",
    ["service", "outcome"],
)
WORKER_COMMAND_SECONDS = Histogram(
    "binderflow_worker_command_duration_seconds",
    "Time spent handling one command",
    ["service"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
SERVICE_UP = Gauge("binderflow_service_up", "1 while the service runs", ["service"])


def preset_worker_labels(service: str) -> None:
    """Create every outcome series at 0 so dashboards see them before the first event."""
    for outcome in WorkerOutcome:
        WORKER_COMMANDS.labels(service, outcome.value)
    WORKER_COMMAND_SECONDS.labels(service)
