"""How the tools print events: one JSON object or one line of text per event, never a token.

Pure. A `ready` event in the log carries its Jupyter token sealed (schema 2) or,
written by schema 1, in plain text; both are blanked before anything is printed.
"""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from schemas import AnyEvent, BuildEnded, BuildStarted, LaunchRequested, RefResolved, ServerReady, encode_event

from .launches import LaunchFacts

__all__ = ["redact", "event_json", "event_line", "utc_text"]


def redact(event: AnyEvent) -> AnyEvent:
    """`event` without secrets: a ready event's token and sealed token are emptied."""
    if isinstance(event, ServerReady) and (event.token or event.token_sealed):
        return msgspec.structs.replace(event, token="", token_sealed="")
    return event


def event_json(event: AnyEvent) -> str:
    """The stored JSON of `event` (decodable with schemas.decode_event), redacted."""
    return encode_event(redact(event)).decode()


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _detail(event: AnyEvent) -> str:
    match event:
        case LaunchRequested():
            extra = (" with build token" if event.build_token else "") + (", build only" if event.build_only else "")
            return f"from {event.origin or '-'}{extra}"
        case RefResolved():
            return f"{event.ref} -> {event.resolved_ref[:12]} ({'built' if event.is_built else 'to build'}) {event.image_name}"
        case BuildStarted():
            return f"build {event.build_id} of {event.image_name}"
        case BuildEnded():
            return f"build {event.build_id} {event.status} in {event.seconds:.1f} s"
        case ServerReady():
            return event.url or event.image
        case _:
            return _first_line(event.message)


def utc_text(moment: datetime) -> str:
    """`2026-01-02T03:04:05.678Z`: UTC to the millisecond (a time without offset is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_line(event: AnyEvent, facts: LaunchFacts | None) -> str:
    """One line of text: time, launch, phase, repository, what happened."""
    repo = facts.label if facts is not None else "?"
    return f"{utc_text(event.timestamp)}  {event.launch_id}  {event.phase:<13} {repo}  {_detail(redact(event))}".rstrip()
