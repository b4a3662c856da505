"""The one way to follow the event log (services/runtime/eventlog.py), against a real nats-server.

Each test writes into a namespace of its own on the session's nats-server; the
reset test runs a nats-server of its own and restarts it under the follower.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import pytest

from schemas import BuildLogged, LaunchRequested, LoggedEvent, ServerLaunching
from schemas.identity import build_event_id, launcher_event_id, requested_id
from services.runtime.bus import connect
from services.runtime.embedded import start_nats_server
from services.runtime.eventlog import LogFollower, build_log_text, follow_launch, launch_exists, read_launch

from .harness import LogNamespace, free_port, stop_process

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)


class Log(LogNamespace):
    """A private namespace of the event log: publish a launch's events, read them back."""

    async def requested(self, launch_id: str) -> None:
        await self.publisher.event(LaunchRequested(launch_id=launch_id, event_id=requested_id(launch_id), timestamp=NOW, provider="git", spec="x/main"))

    async def lines(self, launch_id: str, first: int, count: int) -> None:
        for n in range(first, first + count):
            await self.publisher.event(
                BuildLogged(launch_id=launch_id, event_id=build_event_id(launch_id, "b1", n), timestamp=NOW, message=f"line {n}\n", build_id="b1")
            )


@pytest.fixture
async def log(nats_url: str) -> AsyncIterator[Log]:
    nc = await connect(nats_url, "eventlog-test")
    yield Log(nc, (await LogNamespace.open(nc)).subjects)
    await nc.drain()


def _messages(events: list[LoggedEvent]) -> list[str]:
    return [e.event.message for e in events if e.event.phase == "building"]


async def test_a_launch_reads_back_in_log_order_with_its_positions(log: Log) -> None:
    lid = "launch-in-order"
    await log.requested(lid)
    await log.lines(lid, 1, 5)
    await log.publisher.event(ServerLaunching(launch_id=lid, event_id=launcher_event_id(lid, "launching"), timestamp=NOW))
    events = await read_launch(log.js, log.subjects, lid)
    assert [e.event.phase for e in events] == ["requested"] + ["building"] * 5 + ["launching"]
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert build_log_text(events) == "".join(f"line {n}\n" for n in range(1, 6))
    assert await launch_exists(log.js, log.subjects, lid)
    assert not await launch_exists(log.js, log.subjects, "never-launched")
    assert await read_launch(log.js, log.subjects, "never-launched") == []


async def test_a_follower_hands_out_what_is_stored_then_what_comes_and_knows_when_it_caught_up(log: Log) -> None:
    lid = "launch-followed"
    await log.lines(lid, 1, 3)
    async with follow_launch(log.js, log.subjects, lid) as follower:
        got = [await follower.next(5) for _ in range(3)]
        assert [r.decode().message for r in got if r is not None] == ["line 1\n", "line 2\n", "line 3\n"]
        assert follower.caught_up
        assert await follower.next(0.2) is None  # nothing more yet
        await log.lines(lid, 4, 2)
        more = [await follower.next(5), await follower.next(5)]
        assert [r.decode().message for r in more if r is not None] == ["line 4\n", "line 5\n"]
        assert follower.last_seq == more[-1].seq  # type: ignore[union-attr]


async def test_a_follower_from_now_on_or_from_a_time_skips_what_came_before(log: Log) -> None:
    lid = "launch-tail"
    await log.lines(lid, 1, 2)
    cut = datetime.now(timezone.utc)
    await asyncio.sleep(0.05)
    await log.lines(lid, 3, 1)
    async with LogFollower(log.js, log.subjects.events_stream, log.subjects.launch_all(lid), start="new") as new_only:
        async with LogFollower(log.js, log.subjects.events_stream, log.subjects.launch_all(lid), start=cut) as since:
            assert (await since.next(5)).decode().message == "line 3\n"  # type: ignore[union-attr]
            assert await new_only.next(0.2) is None
            await log.lines(lid, 4, 1)
            assert (await new_only.next(5)).decode().message == "line 4\n"  # type: ignore[union-attr]
            assert (await since.next(5)).decode().message == "line 4\n"  # type: ignore[union-attr]


async def test_a_follower_with_a_callback_gets_every_record_once_in_order(log: Log) -> None:
    lid = "launch-callback"
    await log.lines(lid, 1, 50)
    seen: list[int] = []
    done = asyncio.Event()

    def on_record(record) -> None:
        seen.append(record.seq)
        if len(seen) == 80:
            done.set()

    follower = await follow_launch(log.js, log.subjects, lid).open(on_record)
    try:
        await log.lines(lid, 51, 30)
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await follower.close()
    assert seen == sorted(set(seen))


@pytest.mark.slow
async def test_a_follower_survives_its_server_restarting_and_repeats_nothing(tmp_path: Path) -> None:
    """The nats-server under a follower is killed and started again on the same port and
    store: the ordered consumer is gone with it, nats-py re-creates it from the last
    position read, and the follower hands out each message once, in order."""
    port, monitor = free_port(), free_port()
    proc, url, _ = start_nats_server(tmp_path / "store", port=port, monitor_port=monitor)
    nc = await connect(url, "eventlog-restart")
    try:
        log = Log(nc, (await LogNamespace.open(nc)).subjects)
        lid = "launch-restart"
        await log.lines(lid, 1, 10)
        async with follow_launch(log.js, log.subjects, lid) as follower:
            first = [await follower.next(5) for _ in range(10)]
            proc.kill()
            proc.wait()
            proc, _, _ = await asyncio.to_thread(start_nats_server, tmp_path / "store", port=port, monitor_port=monitor)
            for _ in range(100):  # the client reconnects by itself
                if nc.is_connected:
                    break
                await asyncio.sleep(0.1)
            await log.lines(lid, 11, 10)
            rest = []
            for _ in range(10):
                record = await follower.next(30)  # the consumer comes back after two missed heartbeats
                assert record is not None
                rest.append(record)
            assert await follower.next(1) is None
        messages = [r.decode().message for r in first + rest if r is not None]
        assert messages == [f"line {n}\n" for n in range(1, 21)]
    finally:
        await nc.close()
        stop_process(proc)
