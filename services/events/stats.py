"""Launch and build statistics per repository, from the log alone. Pure.

A launch belongs to the range its request was stored in, and counts by how it
ended; it is attributed to the repository it
resolved to (one that failed before resolving has none, and is counted under
`UNRESOLVED`). Builds count once per build id, from `build_ended`: "cached"
builds found their environment already built and have no duration. Durations
are the median, the 90th percentile (nearest rank) and the maximum.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Iterable

from schemas.subjects import repo_key

from .ledger import FAILURE, SUCCESS, LaunchLedger

__all__ = ["Distribution", "RepoStats", "distribution", "repo_stats", "UNRESOLVED"]

UNRESOLVED = "(not resolved)"


@dataclass(frozen=True)
class Distribution:
    """Summary of durations, in seconds."""

    count: int
    median_seconds: float
    p90_seconds: float
    max_seconds: float


def distribution(values: Iterable[float]) -> Distribution | None:
    """Median, nearest-rank 90th percentile and maximum of `values`; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return Distribution(len(ordered), statistics.median(ordered), p90, ordered[-1])


@dataclass
class RepoStats:
    """What the log says about one repository."""

    repo_url: str
    launches: int = 0
    launches_by_status: dict[str, int] = field(default_factory=dict)
    builds: int = 0
    builds_by_status: dict[str, int] = field(default_factory=dict)
    build_seconds: Distribution | None = None
    seconds_to_ready: Distribution | None = None


def _key(url: str) -> str:
    return repo_key(url) if url else UNRESOLVED


def repo_stats(ledger: LaunchLedger, repo_url: str | None = None, top: int = 10) -> list[RepoStats]:
    """Statistics of `repo_url` (a one-item list, empty if the log never saw it), or of
    the `top` repositories by number of launches (ties: by URL).

    Repositories are compared as schemas.subjects.repo_key compares them, so
    `.../o/r`, `.../o/r/` and `.../o/r.git` are one. Launches not yet finished
    count under status "running".
    """
    wanted = _key(repo_url) if repo_url else None
    names: dict[str, str] = {}
    launches: dict[str, list[str]] = {}
    to_ready: dict[str, list[float]] = {}
    for launch in ledger.launches.values():
        if not launch.is_requested:
            continue  # requested before the range read: it belongs to an earlier range
        key = _key(launch.repo_url)
        if wanted is not None and key != wanted:
            continue
        names.setdefault(key, launch.repo_url or UNRESOLVED)
        launches.setdefault(key, []).append(launch.status or "running")
        seconds = launch.seconds_to_ready
        if seconds is not None:
            to_ready.setdefault(key, []).append(seconds)
    builds: dict[str, list[tuple[str, float | None]]] = {}
    for build in ledger.builds.values():
        if not build.status:
            continue  # still running, or its end is outside the range read
        url = ledger.repo_url_of_build(build)
        key = _key(url)
        if wanted is not None and key != wanted:
            continue
        names.setdefault(key, url or UNRESOLVED)
        builds.setdefault(key, []).append((build.status, build.seconds))

    def stats_of(key: str) -> RepoStats:
        statuses = launches.get(key, [])
        ended = builds.get(key, [])
        return RepoStats(
            repo_url=names[key],
            launches=len(statuses),
            launches_by_status=_counts(statuses),
            builds=len(ended),
            builds_by_status=_counts([status for status, _ in ended]),
            build_seconds=distribution(s for status, s in ended if status in (SUCCESS, FAILURE) and s is not None),
            seconds_to_ready=distribution(to_ready.get(key, [])),
        )

    if wanted is not None:
        return [stats_of(wanted)] if wanted in names else []
    ranked = sorted(names, key=lambda k: (-len(launches.get(k, [])), names[k]))
    return [stats_of(key) for key in ranked[:top]]


def _counts(values: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return dict(sorted(counts.items()))
