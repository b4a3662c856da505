"""Paced replay: how long to wait before each event so a launch plays back as it happened. Pure."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["Pacer"]


class Pacer:
    """Turns event timestamps into waits, `speed` times faster than they happened.

    The first event plays at once; each next one after the time that separated it
    from the one before, divided by `speed`. Events out of order (clocks of
    different services) play at once rather than waiting a negative time.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._previous: datetime | None = None

    def delay_seconds(self, timestamp: datetime) -> float:
        """Seconds to wait before the event stamped `timestamp` (a time without offset is UTC)."""
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=timezone.utc)
        previous = self._previous
        if previous is None or timestamp > previous:
            self._previous = timestamp
        if previous is None:
            return 0.0
        return max(0.0, (timestamp - previous).total_seconds() / self._speed)
