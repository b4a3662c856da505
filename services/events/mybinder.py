"""Launches as the mybinder.org analytics archive has them (https://archive.analytics.mybinder.org).

One JSON object per finished launch, in BinderHub's launch event
`binderhub.jupyter.org/launch`, version 5 (binderhub/event-schemas/launch.json):

    {"timestamp": "2026-01-02T03:04:00+00:00", "schema": "binderhub.jupyter.org/launch",
     "version": 5, "provider": "GitHub", "spec": "owner/repo/HEAD", "ref": "<commit>",
     "status": "success", "build_token": false, "origin": "binder.example.org"}

Choices, where the log and the archive differ (see docs/analytics.md):
- `timestamp` is when the launch ended (BinderHub emits the event then),
  rounded down to the minute and written as the archive's publisher writes it
  (`isoformat()` of a UTC time: `+00:00`); lines are ordered by it.
- `provider` is BinderHub's provider name for the spec prefix; `ref` the
  resolved commit (empty when the launch failed before its ref was resolved);
  `origin` the host of the Binder that served the launch.
- mybinder.org's archive holds successful launches only; the log also knows
  failures, exported with status "failure" unless only successes are asked for.
  Build-only requests start no server and are not launches: never exported.
- `request_origin` (the page that asked) is not in BinderHub's schema; it is
  added only when asked for (the schema allows extra properties).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Iterable

from schemas.providers import provider_name

from .ledger import SUCCESS, LaunchSummary
from .times import as_utc

__all__ = ["LAUNCH_SCHEMA", "LAUNCH_SCHEMA_VERSION", "archive_timestamp", "mybinder_record", "mybinder_lines"]

LAUNCH_SCHEMA = "binderhub.jupyter.org/launch"
LAUNCH_SCHEMA_VERSION = 5


def archive_timestamp(moment: datetime) -> str:
    """`moment` as the archive writes it: UTC, rounded down to the minute, `+00:00`. Pure."""
    return as_utc(moment).replace(second=0, microsecond=0).isoformat()


def mybinder_record(launch: LaunchSummary, *, with_request_origin: bool = False) -> dict[str, object] | None:
    """The archive object for `launch`, or None when it is not one the archive would hold
    (not finished, not a launch, or its `requested` fact is gone from the log)."""
    if launch.ended_at is None or not launch.is_requested or launch.build_only:
        return None
    record: dict[str, object] = {
        "timestamp": archive_timestamp(launch.ended_at),
        "schema": LAUNCH_SCHEMA,
        "version": LAUNCH_SCHEMA_VERSION,
        # BinderHub's provider names ("GitHub", "Git", ...), from the catalogue.
        "provider": provider_name(launch.provider),
        "spec": launch.spec,
        "ref": launch.resolved_ref,
        "status": launch.status,
        "build_token": launch.build_token,
        "origin": launch.origin,
    }
    if with_request_origin:
        record["request_origin"] = launch.request_origin
    return record


def mybinder_lines(
    launches: Iterable[LaunchSummary],
    *,
    only_success: bool = False,
    with_request_origin: bool = False,
) -> list[str]:
    """JSON Lines (without newlines) for the exportable `launches`, ordered by timestamp. Pure."""
    records: list[tuple[datetime, str, dict[str, object]]] = []
    for launch in launches:
        if only_success and launch.status != SUCCESS:
            continue
        record = mybinder_record(launch, with_request_origin=with_request_origin)
        if record is not None:
            assert launch.ended_at is not None
            records.append((launch.ended_at, launch.launch_id, record))
    records.sort(key=lambda item: (item[0], item[1]))
    # json.dumps with its default separators: the archive's own spelling.
    return [json.dumps(record) for _, _, record in records]
