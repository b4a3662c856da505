"""The event tools against a real nats-server: events are written by the services' own
publisher (EventPublisher, ensure_streams), then read back by tail, replay, export,
stats, the command line and the example analytics consumer."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Callable

import jsonschema
import msgspec
import nats
import pytest
from nats.aio.client import Client as NATS

from schemas import AnyEvent, BuildStarted, ServerReady, Subjects, decode_event
from services.events.launches import EventFilter
from services.events.reader import read_records
from services.events.render import redact
from services.events.tools import LaunchNotFound, export_mybinder, launch_stats, replay_launch, replay_range, tail
from services.events.wire import WireConnection, WireUnavailable
from services.runtime.bus import EventPublisher, ensure_streams
from services.runtime.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
LAUNCH_SCHEMA = json.loads((FIXTURES / "mybinder-launch-v5.schema.json").read_text())
# The fixture's launches: a build, a cached relaunch, a ref that does not resolve, a failed build.
A, B, C, D = (f"{c}1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6" for c in "abcd")
REQUIREMENTS = "https://github.com/binder-examples/requirements"


def _fixture(name: str = "events_v2.jsonl") -> list[AnyEvent]:
    return [decode_event(line) for line in (FIXTURES / name).read_text().splitlines()]


class Log:
    """A private namespace of the event log on the test nats-server, written the way services write."""

    def __init__(self, nc: NATS, prefix: str) -> None:
        self.nc = nc
        self.prefix = prefix
        self.subjects = Subjects(prefix)
        self.publisher = EventPublisher(nc.jetstream(), self.subjects)

    async def write(self, events: list[AnyEvent]) -> None:
        for event in events:
            if isinstance(event, BuildStarted):
                await self.publisher.build_started(event)
            else:
                await self.publisher.event(event)


@pytest.fixture
async def log(nats_url: str) -> AsyncIterator[Log]:
    """An empty event log (the production streams) in a uuid-named namespace."""
    nc = await nats.connect(nats_url)
    prefix = f"ev{uuid.uuid4().hex[:10]}"
    await ensure_streams(nc.jetstream(), Subjects(prefix), load_settings(environ={}))
    yield Log(nc, prefix)
    await nc.close()


def _collector() -> tuple[list[str], Callable[[str], None]]:
    """Lines a tool printed, and the `out` that collects them."""
    lines: list[str] = []
    return lines, lines.append


# -- replay ---------------------------------------------------------------------------


async def test_replay_of_a_launch_gives_its_events_and_build_log_in_log_order(log: Log) -> None:
    events = _fixture()
    await log.write(events)
    lines, out = _collector()
    count = await replay_launch(log.nc, log.subjects, A, out, as_json=True)
    expected = [redact(e) for e in events if e.launch_id == A]
    assert count == len(expected) == 13
    assert [decode_event(line) for line in lines] == expected
    assert "building" in [e.phase for e in expected]


async def test_replay_of_an_unknown_launch_says_so(log: Log) -> None:
    await log.write(_fixture())
    with pytest.raises(LaunchNotFound):
        await replay_launch(log.nc, log.subjects, "0000000000000000", lambda line: None)


async def test_paced_replay_waits_between_events_as_they_happened(log: Log) -> None:
    await log.write(_fixture())
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    await replay_launch(log.nc, log.subjects, A, lambda line: None, speed=10.0, sleep=record)
    assert sum(waits) == pytest.approx(5.75 / 10)
    # A real paced replay, fast enough for a test, ends by itself.
    lines, out = _collector()
    await asyncio.wait_for(replay_launch(log.nc, log.subjects, A, out, speed=50.0), 10)
    assert len(lines) == 13


async def test_replay_of_a_time_range_reads_only_what_was_stored_in_it(log: Log) -> None:
    events = _fixture()
    first, rest = events[:13], events[13:]
    await log.write(first)
    middle = datetime.now(timezone.utc)
    await log.write(rest)
    lines, out = _collector()
    await replay_range(log.nc, log.subjects, middle, None, out, as_json=True)
    assert [decode_event(line) for line in lines] == [redact(e) for e in rest if e.phase != "building"]
    lines, out = _collector()
    await replay_range(log.nc, log.subjects, None, middle, out, as_json=True, with_log=True)
    assert [decode_event(line) for line in lines] == [redact(e) for e in first]


async def test_replay_filters_by_repository_of_launches_begun_before_the_range(log: Log) -> None:
    events = _fixture()
    # Launch D's request and resolution are stored before the range; its end inside it.
    d_first, d_rest = [e for e in events if e.launch_id == D][:2], [e for e in events if e.launch_id == D][2:]
    await log.write(d_first)
    middle = datetime.now(timezone.utc)
    await log.write([e for e in events if e.launch_id != D] + d_rest)
    lines, out = _collector()
    await replay_range(log.nc, log.subjects, middle, None, out, event_filter=EventFilter(repo="gitlab.example.org", phases=frozenset({"failed"})))
    assert len(lines) == 1 and D in lines[0] and "https://gitlab.example.org/group/broken" in lines[0]


async def test_tokens_of_old_events_never_reach_the_output(log: Log) -> None:
    await log.write(_fixture("events_v1.jsonl"))
    for as_json in (True, False):
        lines, out = _collector()
        await replay_launch(log.nc, log.subjects, "0f3a9c2e-launch", out, as_json=as_json)
        assert len(lines) == 8
        assert not any("s3cr3t" in line for line in lines)


# -- tail -------------------------------------------------------------------------------


async def test_tail_prints_new_events_of_a_repository_including_launches_begun_before_it(log: Log) -> None:
    events = _fixture()
    a_events = [e for e in events if e.launch_id == A]
    before = [e for e in events if e.launch_id == C] + a_events[:2]  # C ended before tail; A only began
    await log.write(before)
    lines, out = _collector()
    ready = asyncio.Event()
    task = asyncio.create_task(
        tail(log.nc, log.subjects, EventFilter(repo="binder-examples/requirements", phases=frozenset({"ready", "failed"})), out,
             as_json=True, limit=2, on_ready=ready.set)
    )
    await asyncio.wait_for(ready.wait(), 10)
    await log.write(a_events[2:] + [e for e in events if e.launch_id in (B, D)])
    assert await asyncio.wait_for(task, 20) == 2
    printed = [decode_event(line) for line in lines]
    assert [(e.launch_id, e.phase) for e in printed] == [(A, "ready"), (B, "ready")]
    assert all(isinstance(e, ServerReady) and not e.token_sealed for e in printed)


async def test_tail_of_log_lines_reads_the_log_subjects(log: Log) -> None:
    events = _fixture()
    lines, out = _collector()
    ready = asyncio.Event()
    task = asyncio.create_task(tail(log.nc, log.subjects, EventFilter(phases=frozenset({"building"})), out, limit=4, on_ready=ready.set))
    await asyncio.wait_for(ready.wait(), 10)
    await log.write(events)
    await asyncio.wait_for(task, 20)
    assert [line.rsplit("  ", 1)[1] for line in lines] == [e.message.strip() for e in events if e.phase == "building"]


# -- export and stats -----------------------------------------------------------------------


async def test_export_writes_one_archive_line_per_finished_launch_in_the_range(log: Log) -> None:
    events = _fixture()
    # A's request is stored before the range, its end inside: the export looks its request up.
    await log.write(events[:5])
    middle = datetime.now(timezone.utc)
    await log.write(events[5:])
    lines = await export_mybinder(log.nc, log.subjects, middle, None)
    records = [json.loads(line) for line in lines]
    for record in records:
        jsonschema.validate(record, LAUNCH_SCHEMA)
    assert [(r["provider"], r["status"]) for r in records] == [("GitHub", "success"), ("GitHub", "success"), ("GitHub", "failure"), ("Git", "failure")]
    assert records[0]["spec"] == "binder-examples/requirements/HEAD" and records[0]["build_token"] is True
    assert await export_mybinder(log.nc, log.subjects, datetime.now(timezone.utc), None) == []


async def test_stats_answer_how_many_launches_and_how_long_builds_took(log: Log) -> None:
    await log.write(_fixture())
    since = datetime.now(timezone.utc) - timedelta(days=180)
    [requirements] = await launch_stats(log.nc, log.subjects, since, None, repo_url=REQUIREMENTS)
    assert (requirements.launches, requirements.launches_by_status, requirements.builds) == (2, {"success": 2}, 1)
    assert requirements.build_seconds is not None and requirements.build_seconds.median_seconds == 2.9
    top = await launch_stats(log.nc, log.subjects, None, None, top=2)
    assert [r.launches for r in top] == [2, 1]
    assert await launch_stats(log.nc, log.subjects, datetime.now(timezone.utc), None, repo_url=REQUIREMENTS) == []


# -- the bulk reader --------------------------------------------------------------------------


async def test_bulk_reads_keep_log_order_across_many_batches_either_way_they_filter(log: Log) -> None:
    template = _fixture()
    written: list[AnyEvent] = []
    for i in range(40):
        for e in template:
            written.append(msgspec.structs.replace(e, launch_id=f"{i:04d}{e.launch_id[4:]}", event_id=f"{i}-{e.event_id}"))
    await log.write(written)
    # Phases among log lines: whether the server filters or this reader does, the same messages in the same order.
    # And whether messages come over the reader's own connection (wire.py) or through nats-py.
    for server_filter, use_wire in ((None, True), (True, True), (False, True), (None, False), (True, False)):
        seen = [
            r async for batch in read_records(
                log.nc, log.subjects.events_stream, log.subjects.all_launch_events, batch_size=64, server_filter=server_filter, use_wire=use_wire
            ) for r in batch
        ]
        assert [decode_event(r.data) for r in seen] == [e for e in written if e.phase != "building"]
        assert [r.seq for r in seen] == sorted(r.seq for r in seen)
    # One launch among many: filtered by the server.
    one = f"0007{A[4:]}"
    seen = [r async for batch in read_records(log.nc, log.subjects.events_stream, log.subjects.launch_all(one), batch_size=4) for r in batch]
    assert [decode_event(r.data).event_id for r in seen] == [e.event_id for e in written if e.launch_id == one]
    # Until a moment: what was stored before it, and nothing after.
    cut = seen[5].stored_at
    before = [r async for batch in read_records(log.nc, log.subjects.events_stream, None, until=cut, batch_size=16) for r in batch]
    assert before and all(r.stored_ns < seen[5].stored_ns for r in before)


# -- the command line and the example consumer ------------------------------------------------


def _cli(log: Log, nats_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERFLOW_")}
    env.update(BINDERFLOW_SUBJECT_PREFIX=log.prefix, BINDERFLOW_DATA_DIR=str(ROOT / ".cache" / "no-such-data-dir"))
    return subprocess.run([sys.executable, "-m", "services", "events", *args, "--nats", nats_url], capture_output=True, text=True, env=env, cwd=ROOT, check=check, timeout=60)


@pytest.mark.slow
async def test_command_line_tools(log: Log, nats_url: str, tmp_path: Path) -> None:
    await log.write(_fixture())
    replayed = _cli(log, nats_url, "replay", A, "--json").stdout.splitlines()
    assert [decode_event(line).event_id for line in replayed] == [e.event_id for e in _fixture() if e.launch_id == A]

    out = tmp_path / "launches.jsonl"
    done = _cli(log, nats_url, "export", "--since", "1h", "--format", "mybinder", "-o", str(out), "--only-success")
    assert "2 launches written" in done.stderr
    assert [json.loads(line)["status"] for line in out.read_text().splitlines()] == ["success", "success"]

    stats = json.loads(_cli(log, nats_url, "stats", "--repo", REQUIREMENTS + "/", "--since", "180d", "--json").stdout)
    assert stats["repositories"][0]["launches"] == 2 and stats["repositories"][0]["build_seconds"]["max_seconds"] == 2.9
    table = _cli(log, nats_url, "stats").stdout
    assert "binder-examples/requirements" in table and "broken" in table

    tailed = _cli(log, nats_url, "tail", "--since", "1h", "--phase", "ready", "failed", "--limit", "3", "--provider", "gh").stdout.splitlines()
    assert [line.split()[2] for line in tailed] == ["ready", "ready", "failed"]

    missing = _cli(log, nats_url, "replay", "0000000000000000", check=False)
    assert missing.returncode == 1 and "no launch 0000000000000000" in missing.stderr
    bad_time = _cli(log, nats_url, "stats", "--since", "last tuesday", check=False)
    assert bad_time.returncode == 1 and "ISO 8601" in bad_time.stderr


@pytest.mark.slow
async def test_command_line_says_when_nats_has_no_event_log(nats_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERFLOW_")}
    env["BINDERFLOW_SUBJECT_PREFIX"] = f"none{uuid.uuid4().hex[:8]}"
    done = subprocess.run([sys.executable, "-m", "services", "events", "stats", "--nats", nats_url], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 1 and "has no event log" in done.stderr


@pytest.mark.slow
async def test_example_analytics_consumer_counts_launches_per_repository_and_resumes(log: Log, nats_url: str, tmp_path: Path) -> None:
    events = _fixture()
    await log.write(events)
    state = tmp_path / "counts.json"

    async def run_example() -> dict[str, int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "docs" / "examples" / "analytics_consumer.py"), "--nats", nats_url, "--prefix", log.prefix,
            "--state", str(state), "--exit-when-idle", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return json.loads(out)

    assert await run_example() == {REQUIREMENTS: 2, "https://gitlab.example.org/group/broken": 1}
    # Another launch of the repository: the durable consumer reads only what is new.
    again = [e for e in events if e.launch_id == B]
    new_id = "e1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
    await log.write([msgspec.structs.replace(e, launch_id=new_id, event_id=e.event_id.replace(B, new_id)) for e in again])
    assert await run_example() == {REQUIREMENTS: 3, "https://gitlab.example.org/group/broken": 1}
    assert json.loads(state.read_text())["counts"][REQUIREMENTS] == 3


@pytest.mark.slow
async def test_bulk_reads_from_a_server_that_wants_a_password_use_the_urls_credentials(tmp_path: Path) -> None:
    """A nats-server of its own with user and password: the reader's own connection logs in
    with the URL's credentials (and the read is the same as through nats-py)."""
    from services.runtime.embedded import find_nats_server, wait_for_nats

    from .harness import free_port, stop_process

    port, monitor = free_port(), free_port()
    server = subprocess.Popen(
        [find_nats_server(), "-js", "-sd", str(tmp_path), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor), "--user", "reader", "--pass", "s3cret"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_nats(f"http://127.0.0.1:{monitor}")
        nc = await nats.connect(f"nats://reader:s3cret@127.0.0.1:{port}")
        try:
            subjects = Subjects("auth")
            await ensure_streams(nc.jetstream(), subjects, load_settings(environ={}))
            await Log(nc, "auth").write(_fixture())
            reads = []
            for use_wire in (True, False):
                reads.append([r.seq async for batch in read_records(nc, subjects.events_stream, use_wire=use_wire) for r in batch])
            assert reads[0] == reads[1] and len(reads[0]) == 28 + 2  # and the two repository index entries
            (await WireConnection.open(f"nats://reader:s3cret@127.0.0.1:{port}")).close()
            with pytest.raises(WireUnavailable, match="Authorization"):
                await WireConnection.open(f"nats://reader:wrong@127.0.0.1:{port}")
        finally:
            await nc.close()
    finally:
        stop_process(server)
