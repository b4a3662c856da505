"""Every Prometheus metric of the gateway."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["OPEN_STREAMS", "WATCHED_LAUNCHES", "LAUNCH_REQUESTS", "EVENTS_SENT"]

OPEN_STREAMS = Gauge("binderflow_gateway_open_streams", "Event streams open to clients")
WATCHED_LAUNCHES = Gauge("binderflow_gateway_watched_launches", "Launches with at least one client watching here")
LAUNCH_REQUESTS = Counter("binderflow_gateway_launch_requests_total", "Launches requested through /build", ["provider"])
EVENTS_SENT = Counter("binderflow_gateway_events_sent_total", "Phase events sent to clients", ["phase"])
