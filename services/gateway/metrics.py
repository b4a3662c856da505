"""Every Prometheus metric of the gateway."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .launch_metrics import Metric, Observation

__all__ = [
    "OPEN_STREAMS",
    "WATCHED_LAUNCHES",
    "LAUNCH_REQUESTS",
    "EVENTS_SENT",
    "BUILD_BUCKETS",
    "LAUNCH_BUCKETS",
    "BUILD_TIME",
    "LAUNCH_TIME",
    "BUILD_COUNT",
    "LAUNCH_COUNT",
    "BUILDS_INPROGRESS",
    "LAUNCHES_INPROGRESS",
    "record_observations",
]

OPEN_STREAMS = Gauge("binderflow_gateway_open_streams", "Event streams open to clients")
WATCHED_LAUNCHES = Gauge("binderflow_gateway_watched_launches", "Launches with at least one client watching here")
LAUNCH_REQUESTS = Counter("binderflow_gateway_launch_requests_total", "Launches requested through /build", ["provider"])
EVENTS_SENT = Counter("binderflow_gateway_events_sent_total", "Phase events sent to clients", ["phase"])

# BinderHub's own metrics, with its names, labels and buckets, so its dashboards and
# alerts work unchanged. The gateway computes them from the phase events of the
# launches it serves (see launch_metrics.py): with several gateways, sum over them.
# Builds and launches take very different times, hence two sets of buckets.
BUILD_BUCKETS = (60, 120, 300, 600, 1800, 3600, 7200, float("inf"))
LAUNCH_BUCKETS = (2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf"))
BUILD_TIME = Histogram("binderhub_build_time_seconds", "Histogram of build times", ["status"], buckets=BUILD_BUCKETS)
LAUNCH_TIME = Histogram(
    "binderhub_launch_time_seconds", "Histogram of launch times", ["status", "retries"], buckets=LAUNCH_BUCKETS
)
BUILD_COUNT = Counter("binderhub_build_count", "Counter of builds by repo", ["status", "provider", "repo"])
LAUNCH_COUNT = Counter("binderhub_launch_count", "Counter of launches by repo", ["status", "provider", "repo"])
BUILDS_INPROGRESS = Gauge("binderhub_inprogress_builds", "Builds currently in progress")
LAUNCHES_INPROGRESS = Gauge("binderhub_inprogress_launches", "Launches currently in progress")


# Which metric each of the state machine's observations goes to, by kind.
_HISTOGRAMS = {Metric.BUILD_TIME: BUILD_TIME, Metric.LAUNCH_TIME: LAUNCH_TIME}
_COUNTERS = {Metric.BUILD_COUNT: BUILD_COUNT, Metric.LAUNCH_COUNT: LAUNCH_COUNT}
_GAUGES = {Metric.BUILDS_INPROGRESS: BUILDS_INPROGRESS, Metric.LAUNCHES_INPROGRESS: LAUNCHES_INPROGRESS}


def record_observations(observations: list[Observation]) -> None:
    """Record what the launch-metrics state machine (launch_metrics.py) says on BinderHub's metrics."""
    for o in observations:
        if o.metric in _HISTOGRAMS:
            _HISTOGRAMS[o.metric].labels(**o.labels).observe(o.value)
        elif o.metric in _COUNTERS:
            _COUNTERS[o.metric].labels(**o.labels).inc(o.value)
        else:
            _GAUGES[o.metric].inc(o.value)
