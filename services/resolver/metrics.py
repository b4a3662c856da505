"""Every Prometheus metric of the resolver."""

from __future__ import annotations

import enum

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["ResolveOutcome", "RESOLUTIONS", "RESOLVE_SECONDS", "GITHUB_RATE_LIMIT_REMAINING"]


class ResolveOutcome(enum.Enum):
    BUILT = "built"
    BUILD = "build"
    FAILED = "failed"
    UNKNOWN_PROVIDER = "unknown_provider"
    BANNED = "banned"


RESOLUTIONS = Counter("binderflow_resolver_resolutions_total", "Specs resolved, by provider and outcome", ["provider", "outcome"])
RESOLVE_SECONDS = Histogram(
    "binderflow_resolver_resolve_duration_seconds",
    "Time to resolve a ref to a commit",
    ["provider"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
GITHUB_RATE_LIMIT_REMAINING = Gauge(
    "binderflow_resolver_github_rate_limit_remaining", "GitHub API requests left in the current rate-limit window (last seen)"
)
