"""What an open event stream costs a gateway, and how fast streams catch up.

Starts a private nats-server and one real gateway process on 127.0.0.1, writes
synthetic launches into the event log with the production publisher, then opens
many SSE streams through the gateway's attach URL and measures:

- shared:   N clients watching ONE launch (one JetStream consumer, fanned out);
- distinct: N clients watching N launches (one consumer per launch);
- resume:   N clients reconnecting half-way through N launches with Last-Event-ID.

The shared row is the baseline of the same run: the difference to `distinct`
is what a consumer per launch costs. Launches are left unfinished, so streams
stay open while the gateway's memory is sampled.

    python -m bench streams [--clients N] [--events E]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import aiohttp
from nats.aio.client import Client as NATS
from rich.console import Console
from rich.table import Table

from schemas import BuildLogged, LaunchRequested, Subjects
from schemas.identity import build_event_id, requested_id
from services.runtime.bus import EventPublisher, connect, ensure_streams
from services.runtime.embedded import start_nats_server
from services.runtime.sealing import load_sealer
from services.runtime.settings import Settings, load_settings
from services.runtime.sse import read_sse
from tests.harness import Pipeline, stop_process, wait_http


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _write_launches(publisher: EventPublisher, count: int, events: int) -> list[str]:
    now = datetime.now(timezone.utc)
    ids = []
    for _ in range(count):
        lid = uuid.uuid4().hex
        ids.append(lid)
        await publisher.event(LaunchRequested(launch_id=lid, event_id=requested_id(lid), timestamp=now, provider="git", spec="bench/main"))
        for i in range(events):
            await publisher.event(BuildLogged(launch_id=lid, event_id=build_event_id(lid, "b", i), timestamp=now, message=f"line {i} " + "x" * 60 + "\n", build_id="b"))
    return ids


async def _watch(session: aiohttp.ClientSession, url: str, want: int, last_event_id: str | None, done: list[float], hold: asyncio.Event) -> None:
    """Read `want` events, note the time, then keep the stream open until `hold` is set."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    got = 0
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=300)) as resp:
        resp.raise_for_status()
        async for event in read_sse(resp.content):
            got += 1
            if got >= want:
                done.append(time.monotonic())
                await hold.wait()
                return
    raise RuntimeError(f"stream ended after {got} of {want} events")


async def _scenario(gateway: str, pid: int, urls: list[str], want: int, resume_ids: list[str] | None = None) -> tuple[float, float, float]:
    """(seconds until every client has its events, gateway RSS MiB with all open, events/s)."""
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        hold = asyncio.Event()
        started = time.monotonic()
        done: list[float] = []

        tasks = [
            asyncio.create_task(_watch(session, urls[i], want, resume_ids[i] if resume_ids else None, done, hold))
            for i in range(len(urls))
        ]
        while len(done) < len(urls):
            await asyncio.sleep(0.05)
            for t in tasks:
                if t.done() and t.exception():
                    raise t.exception()  # type: ignore[misc]
        seconds = max(done) - started
        rss = _rss_mib(pid)
        hold.set()
        await asyncio.gather(*tasks)
    return seconds, rss, len(urls) * want / seconds


@dataclass
class _Bench:
    """A private nats-server with binderflow's streams, a publisher into them, and a gateway-to-be."""

    settings: Settings
    nc: NATS
    subjects: Subjects
    publisher: EventPublisher
    pipeline: Pipeline


@contextlib.asynccontextmanager
async def _private_log(name: str) -> AsyncIterator[_Bench]:
    tmp = Path(tempfile.mkdtemp(prefix=f"binderflow-bench-{name}-"))
    nats, nats_url, _ = start_nats_server(tmp / "nats")
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    (tmp / "data").mkdir()
    (tmp / "logs").mkdir()
    settings = load_settings(environ={"BINDERFLOW_DATA_DIR": str(tmp / "data"), "BINDERFLOW_SUBJECT_PREFIX": prefix})
    nc = await connect(nats_url, "bench")
    subjects = Subjects(prefix)
    await ensure_streams(nc.jetstream(), subjects, settings)
    pipeline = Pipeline(nats_url, prefix, tmp / "data", "http://127.0.0.1:9/", tmp / "logs")
    try:
        yield _Bench(settings, nc, subjects, EventPublisher(nc.jetstream(), subjects), pipeline)
    finally:
        await nc.close()
        pipeline.stop()
        stop_process(nats)


async def _run(clients: int, events: int) -> "list[Row]":
    async with _private_log("streams") as bench:
        return await _run_streams(bench, clients, events)


async def _run_streams(bench: _Bench, clients: int, events: int) -> "list[Row]":
    sealer = load_sealer(bench.settings)
    js, subjects, publisher, pipeline = bench.nc.jetstream(), bench.subjects, bench.publisher, bench.pipeline
    rows = []
    shared = (await _write_launches(publisher, 1, events))[0]
    distinct = await _write_launches(publisher, clients, events)
    (gateway,) = pipeline.start("gateway")
    wait_http(pipeline.gateway_url + "/health", 60, status=None)
    base = pipeline.gateway_url
    idle = _rss_mib(gateway.pid)
    rows.append(("gateway idle", 0, 0.0, idle, 0.0))

    def attach(lid: str) -> str:
        return f"{base}/launches/{lid}/events?key={sealer.watch_key(lid)}"

    want = events  # the log lines (the requested fact is not sent to clients)
    s, rss, rate = await _scenario(base, gateway.pid, [attach(shared)] * clients, want)
    rows.append(("shared: N clients, 1 launch", clients, s, rss, rate))
    s, rss, rate = await _scenario(base, gateway.pid, [attach(lid) for lid in distinct], want)
    rows.append(("distinct: N clients, N launches", clients, s, rss, rate))
    # Resume half-way: ask where each launch's middle event is, then reconnect after it.
    halfway = []
    for lid in distinct:
        info = await js.get_last_msg(subjects.events_stream, subjects.launch_log(lid))
        assert info.seq is not None  # a stored message has its sequence
        halfway.append(f"{lid}:{info.seq - want // 2}:{sealer.watch_key(lid)}")
    s, rss, rate = await _scenario(base, gateway.pid, [attach(lid) for lid in distinct], want // 2, halfway)
    rows.append(("resume: N clients from half-way", clients, s, rss, rate))
    return rows


async def _peak_rss_while(pid: int, work: "asyncio.Future[list[int]]") -> float:
    """The highest RSS (MiB) of `pid` sampled every 10 ms until `work` is done."""
    peak = _rss_mib(pid)
    while not work.done():
        peak = max(peak, _rss_mib(pid))
        await asyncio.sleep(0.01)
    return peak


async def _run_logs(lines: int, clients: int) -> "list[Row]":
    """Build logs read after the fact: `clients` at once GET one launch's log of `lines` lines."""
    rows = []
    async with _private_log("logs") as bench:
        pipeline = bench.pipeline
        (lid,) = await _write_launches(bench.publisher, 1, lines)
        (gateway,) = pipeline.start("gateway")
        wait_http(pipeline.gateway_url + "/health", 60, status=None)
        idle = _rss_mib(gateway.pid)
        rows.append(("gateway idle", 0, 0.0, idle, 0.0))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def fetch() -> int:
                async with session.get(f"{pipeline.gateway_url}/launches/{lid}/log", timeout=aiohttp.ClientTimeout(total=600)) as resp:
                    resp.raise_for_status()
                    return len(await resp.read())

            started = time.monotonic()
            work = asyncio.ensure_future(asyncio.gather(*(fetch() for _ in range(clients))))
            peak = await _peak_rss_while(gateway.pid, work)
            sizes = await work
            seconds = time.monotonic() - started
        rows.append((f"{clients} clients read a {sum(sizes) // clients // 1024 // 1024} MiB log", clients, seconds, peak, clients * lines / seconds))
    return rows


Row = tuple[str, int, float, float, float]


def _print(title: str, columns: tuple[str, str, str, str, str], rows: list[Row]) -> None:
    """A table of (scenario, clients, seconds, MiB, per second) rows."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col != "scenario" else "left")
    for name, n, s, rss, rate in rows:
        table.add_row(name, str(n), f"{s:.2f}" if s else "-", f"{rss:.0f}", f"{rate:,.0f}" if rate else "-")
    Console(width=120).print(table)


def main_logs(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench logs", description="What reading build logs after the fact costs a gateway (GET /launches/<id>/log).")
    parser.add_argument("--lines", type=int, default=100_000, help="lines in the build log")
    parser.add_argument("--clients", type=int, default=8, help="clients reading it at once")
    args = parser.parse_args(argv)
    rows = asyncio.run(_run_logs(args.lines, args.clients))
    _print(f"Build logs after the fact through one gateway ({args.lines} lines)", ("scenario", "clients", "all read (s)", "gateway peak RSS (MiB)", "lines/s"), rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench streams", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--events", type=int, default=50, help="log lines per launch")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    rows = asyncio.run(_run(args.clients, args.events))
    _print(f"Open event streams through one gateway ({args.events} events per launch)", ("scenario", "clients", "all caught up (s)", "gateway RSS (MiB)", "events/s"), rows)

if __name__ == "__main__":
    main()
