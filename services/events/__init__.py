"""Operator and analytics tools over the event log: tail, replay, mybinder.org export, stats.

`reader` reads the log fast; `launches`, `ledger`, `mybinder`, `stats`,
`pacing` and `render` are pure; `tools` puts them together over a NATS
connection; `cli` is `binderflow events ...`.
"""

from .launches import EventFilter, LaunchFacts
from .ledger import LaunchLedger, LaunchSummary
from .mybinder import mybinder_lines
from .reader import read_events, read_records
from .stats import RepoStats, repo_stats
from .times import parse_time

__all__ = [
    "EventFilter",
    "LaunchFacts",
    "LaunchLedger",
    "LaunchSummary",
    "RepoStats",
    "mybinder_lines",
    "parse_time",
    "read_events",
    "read_records",
    "repo_stats",
]
