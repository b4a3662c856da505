"""Which services are alive, from the heartbeats they publish on core NATS."""

from __future__ import annotations

import time

import msgspec

from schemas import SERVICE_NAMES, Heartbeat, decode_heartbeat

__all__ = ["ServiceSightings"]


class ServiceSightings:
    """Last heartbeat seen from each service instance."""

    def __init__(self, stale_after_seconds: float) -> None:
        self.stale_after_seconds = stale_after_seconds
        self._seen: dict[str, tuple[float, Heartbeat]] = {}

    def record(self, data: bytes, now: float | None = None) -> None:
        try:
            beat = decode_heartbeat(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return
        self._seen[beat.instance] = (time.monotonic() if now is None else now, beat)

    def report(self, now: float | None = None) -> dict[str, dict[str, object]]:
        """Per service: is it seen recently, and which instances."""
        now = time.monotonic() if now is None else now
        report: dict[str, dict[str, object]] = {}
        for service in SERVICE_NAMES:
            instances = []
            for instance, (seen, beat) in sorted(self._seen.items()):
                if beat.service != service:
                    continue
                age = now - seen
                if age > self.stale_after_seconds * 10:
                    continue
                instances.append({"instance": instance, "pid": beat.pid, "http_port": beat.http_port, "seconds_since_seen": round(age, 1), "ok": age <= self.stale_after_seconds})
            report[service] = {"ok": any(i["ok"] for i in instances), "instances": instances}
        return report
