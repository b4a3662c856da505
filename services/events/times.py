"""Time arguments of the `binderflow events` tools: ISO 8601 or relative to now (`6h`, `7d`, `180d`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

__all__ = ["parse_time", "as_utc", "TimeArgumentError"]

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class TimeArgumentError(ValueError):
    """A time argument is neither ISO 8601 nor a relative duration; the message says so."""


def parse_time(text: str, now: datetime) -> datetime:
    """The moment `text` names, as an aware UTC datetime. Pure: `now` is passed in.

    Accepts `now`, a duration before now (`90s`, `15m`, `6h`, `7d`, `2w`, `180d`),
    or ISO 8601 (`2026-01-02`, `2026-01-02T03:04:05Z`, `...+02:00`); a time
    without an offset is UTC. Raises TimeArgumentError otherwise.
    """
    if text.strip().lower() == "now":
        return now.astimezone(timezone.utc)
    relative = _RELATIVE.match(text)
    if relative:
        seconds = float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
        return (now - timedelta(seconds=seconds)).astimezone(timezone.utc)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise TimeArgumentError(
            f"{text!r} is not a time: use ISO 8601 (2026-01-02T03:04:05Z) or a duration before now (90s, 15m, 6h, 7d, 2w)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime (a time without offset is taken as UTC). Pure."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
