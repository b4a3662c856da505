"""The `binderflow events` tools over a NATS connection: tail, replay, export, stats.

The I/O edge: read the log (reader.py), fold and filter with the pure modules,
hand lines to `out`. The command line (cli.py) only parses arguments, connects
and prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from datetime import datetime
from typing import Awaitable, Callable, Iterator

import msgspec
from nats.aio.client import Client as NATS

from schemas import AnyEvent, Subjects

from .launches import EventFilter, LaunchDirectory, LaunchFacts
from .ledger import LaunchLedger
from .mybinder import mybinder_lines
from .pacing import Pacer
from .reader import ReadProgress, first_launch_facts, follow_records, read_events, read_records
from .render import event_json, event_line
from .stats import RepoStats, repo_stats

__all__ = ["LaunchNotFound", "tail", "replay_launch", "replay_range", "export_mybinder", "launch_stats", "Output"]

# Where the tools put each line they print (without its newline).
Output = Callable[[str], None]
Sleep = Callable[[float], Awaitable[None]]


@contextlib.contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Bulk reads allocate millions of short-lived objects and build large ledgers, none
    of them in reference cycles: reference counting frees them, while the cycle
    collector's passes over the growing ledger cost 10-30% of a read (bench)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class LaunchNotFound(LookupError):
    """The log holds no event of the launch (never started, or older than the log's retention)."""


async def _learn(nc: NATS, subjects: Subjects, directory: LaunchDirectory, event: AnyEvent, look_up: bool) -> LaunchFacts:
    """The launch's facts after `event`; with `look_up`, a launch first met in the middle
    (begun before the read started) is completed from its first events in the log."""
    facts = directory.learn(event)
    if look_up and not facts.is_known and not facts.was_looked_up:
        facts.was_looked_up = True
        for earlier in await first_launch_facts(nc.jetstream(), subjects, event.launch_id):
            facts.learn(earlier)
    return facts


def _render(event: AnyEvent, facts: LaunchFacts, as_json: bool) -> str:
    return event_json(event) if as_json else event_line(event, facts)


async def tail(
    nc: NATS,
    subjects: Subjects,
    event_filter: EventFilter,
    out: Output,
    *,
    as_json: bool = False,
    since: datetime | None = None,
    limit: int | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Print events as the log stores them (from `since`, else new ones only) that pass
    `event_filter`, until `limit` were printed (None: until cancelled). Returns the count."""
    subject = subjects.all_launch_subjects if event_filter.wants_log_lines else subjects.all_launch_events
    directory = LaunchDirectory()
    # Text lines name the repository, so every launch is looked up; JSON only when filtering needs it.
    look_up = event_filter.needs_facts or not as_json
    printed = 0
    # aclosing: leaving the loop early (a limit, an error) ends the consumer at once.
    async with contextlib.aclosing(follow_records(nc, subjects.events_stream, subject, since=since, on_ready=on_ready)) as records:
        async for record in records:
            try:
                event = record.decode()
            except (msgspec.ValidationError, msgspec.DecodeError):
                continue
            facts = await _learn(nc, subjects, directory, event, look_up)
            if not event_filter.matches(event, facts):
                continue
            out(_render(event, facts, as_json))
            printed += 1
            if limit is not None and printed >= limit:
                break
    return printed


async def _play(
    events: list[tuple[AnyEvent, str]], out: Output, pacer: Pacer | None, sleep: Sleep
) -> None:
    for event, line in events:
        if pacer is not None:
            delay = pacer.delay_seconds(event.timestamp)
            if delay > 0:
                await sleep(delay)
        out(line)


async def replay_launch(
    nc: NATS,
    subjects: Subjects,
    launch_id: str,
    out: Output,
    *,
    as_json: bool = False,
    speed: float | None = None,
    sleep: Sleep = asyncio.sleep,
    progress: ReadProgress | None = None,
) -> int:
    """Print every event of one launch, its build log lines included, in log order;
    paced as they happened when `speed` is given (1.0: real time). Returns the count.
    Raises LaunchNotFound."""
    directory = LaunchDirectory()
    pacer = Pacer(speed) if speed else None
    count = 0
    async with contextlib.aclosing(read_records(nc, subjects.events_stream, subjects.launch_all(launch_id), progress=progress)) as batches:
        async for records in batches:
            batch: list[tuple[AnyEvent, str]] = []
            for record in records:
                try:
                    event = record.decode()
                except (msgspec.ValidationError, msgspec.DecodeError):
                    continue
                batch.append((event, _render(event, directory.learn(event), as_json)))
            await _play(batch, out, pacer, sleep)
            count += len(batch)
    if count == 0:
        raise LaunchNotFound(launch_id)
    return count


async def replay_range(
    nc: NATS,
    subjects: Subjects,
    since: datetime | None,
    until: datetime | None,
    out: Output,
    *,
    event_filter: EventFilter = EventFilter(),
    with_log: bool = False,
    as_json: bool = False,
    speed: float | None = None,
    sleep: Sleep = asyncio.sleep,
    progress: ReadProgress | None = None,
) -> int:
    """Print the events stored from `since` to `until` that pass `event_filter`, in log
    order (build log lines only `with_log`, or when the filter names `building`);
    paced when `speed` is given. Returns the count."""
    # Log lines are read when asked for, or when the filter asks for `building` by name.
    reads_log = with_log or "building" in event_filter.phases
    subject = subjects.all_launch_subjects if reads_log else subjects.all_launch_events
    directory = LaunchDirectory()
    look_up = event_filter.needs_facts or not as_json
    pacer = Pacer(speed) if speed else None
    count = 0
    async with contextlib.aclosing(read_records(nc, subjects.events_stream, subject, since=since, until=until, progress=progress)) as batches:
        async for records in batches:
            batch: list[tuple[AnyEvent, str]] = []
            for record in records:
                try:
                    event = record.decode()
                except (msgspec.ValidationError, msgspec.DecodeError):
                    continue
                facts = await _learn(nc, subjects, directory, event, look_up)
                if event_filter.matches(event, facts):
                    batch.append((event, _render(event, facts, as_json)))
            await _play(batch, out, pacer, sleep)
            count += len(batch)
    return count


async def _ledger(
    nc: NATS, subjects: Subjects, since: datetime | None, until: datetime | None, progress: ReadProgress | None
) -> LaunchLedger:
    ledger = LaunchLedger()
    with _without_cycle_collection():
        async with contextlib.aclosing(read_events(nc, subjects.events_stream, subjects.all_launch_events, since=since, until=until, progress=progress)) as events:
            async for logged in events:
                ledger.apply(logged.event)
    return ledger


async def export_mybinder(
    nc: NATS,
    subjects: Subjects,
    since: datetime | None,
    until: datetime | None,
    *,
    only_success: bool = False,
    with_request_origin: bool = False,
    progress: ReadProgress | None = None,
) -> list[str]:
    """JSON Lines in the mybinder.org archive format, one per launch that ended between
    `since` and `until` (see mybinder.py for the fields)."""
    ledger = await _ledger(nc, subjects, since, until, progress)
    js = nc.jetstream()
    for launch in list(ledger.launches.values()):
        if launch.is_finished and not launch.is_requested:
            # Begun before `since`: its request is earlier in the log.
            for earlier in await first_launch_facts(js, subjects, launch.launch_id):
                if earlier.phase in ("requested", "resolved"):
                    ledger.apply(earlier)
    return mybinder_lines(ledger.launches.values(), only_success=only_success, with_request_origin=with_request_origin)


async def launch_stats(
    nc: NATS,
    subjects: Subjects,
    since: datetime | None,
    until: datetime | None,
    *,
    repo_url: str | None = None,
    top: int = 10,
    progress: ReadProgress | None = None,
) -> list[RepoStats]:
    """Statistics of `repo_url`, or of the `top` repositories, over launches requested between `since` and `until`."""
    ledger = await _ledger(nc, subjects, since, until, progress)
    return repo_stats(ledger, repo_url, top)
