"""Pure parts of the event tools: time arguments, filters, pacing, rendering, the launch
ledger, the mybinder.org export and stats, fed with the stored fixtures."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from schemas import BuildLogged, LaunchRequested, RefResolved, ServerReady, decode_event
from services.events.cli import nats_url_for
from services.events.launches import EventFilter, LaunchDirectory
from services.events.ledger import LaunchLedger
from services.events.mybinder import archive_timestamp, mybinder_lines
from services.events.pacing import Pacer
from services.events.reader import prefers_server_filter, subject_matcher
from services.runtime.eventlog import ack_fields
from services.events.render import event_json, event_line, redact
from services.events.stats import UNRESOLVED, distribution, repo_stats
from services.events.times import TimeArgumentError, parse_time
from services.events.wire import MSG, STATUS, Frame, FrameSplitter, WireConnection, WireUnavailable, _connect_options
from services.runtime.settings import load_settings

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
LAUNCH_SCHEMA = json.loads((FIXTURES / "mybinder-launch-v5.schema.json").read_text())
REQUIREMENTS = "https://github.com/binder-examples/requirements"
BROKEN = "https://gitlab.example.org/group/broken"


def _v2() -> list:
    return [decode_event(line) for line in (FIXTURES / "events_v2.jsonl").read_text().splitlines()]


def _ledger() -> LaunchLedger:
    ledger = LaunchLedger()
    for event in _v2():
        ledger.apply(event)
    return ledger


# -- time arguments -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6h", NOW - timedelta(hours=6)),
        ("7d", NOW - timedelta(days=7)),
        ("180d", NOW - timedelta(days=180)),
        ("90s", NOW - timedelta(seconds=90)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1.5h", NOW - timedelta(minutes=90)),
        ("now", NOW),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=timezone.utc)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    ],
)
def test_time_arguments_are_iso_8601_or_durations_before_now(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "6x", "-3d", "", "2026-13-01"])
def test_a_time_argument_that_is_neither_says_what_is_accepted(text: str) -> None:
    with pytest.raises(TimeArgumentError, match="ISO 8601"):
        parse_time(text, NOW)


# -- filters and launch facts -----------------------------------------------------


def test_filter_by_repository_matches_the_resolved_url_or_the_spec_before_it() -> None:
    events = _v2()
    directory = LaunchDirectory()
    wanted = EventFilter(repo="GITLAB.example.org/group")
    shown = [e for e in events if wanted.matches(e, directory.learn(e))]
    assert {e.launch_id for e in shown} == {"d1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"}
    # The `requested` fact matched through its percent-encoded spec, before `resolved` named the URL.
    assert shown[0].phase == "requested"


def test_filter_by_provider_and_phase() -> None:
    directory = LaunchDirectory()
    wanted = EventFilter(providers=frozenset({"gh"}), phases=frozenset({"ready", "failed"}))
    shown = [(e.launch_id[0], e.phase) for e in _v2() if wanted.matches(e, directory.learn(e))]
    assert shown == [("a", "ready"), ("b", "ready"), ("c", "failed")]


def test_filter_on_launch_facts_rejects_launches_it_knows_nothing_about() -> None:
    event = _v2()[2]  # `waiting`, met without the launch's first events
    assert not EventFilter(providers=frozenset({"gh"})).matches(event, LaunchDirectory().facts(event.launch_id))
    assert EventFilter(phases=frozenset({"waiting"})).matches(event, None)


def test_log_lines_are_read_only_when_a_filter_can_want_them() -> None:
    assert EventFilter().wants_log_lines
    assert EventFilter(phases=frozenset({"building"})).wants_log_lines
    assert not EventFilter(phases=frozenset({"ready", "failed"})).wants_log_lines


def test_directory_forgets_the_oldest_launches_past_its_capacity() -> None:
    directory = LaunchDirectory(capacity=2)
    for event in _v2():
        if isinstance(event, LaunchRequested):
            directory.learn(event)
    assert not directory.facts("a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6").is_known
    assert directory.facts("d1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6").is_known


# -- rendering --------------------------------------------------------------------


def test_no_token_is_printed_sealed_or_plain() -> None:
    v1_ready = next(decode_event(line) for line in (FIXTURES / "events_v1.jsonl").read_text().splitlines() if '"ready"' in line)
    assert isinstance(v1_ready, ServerReady) and v1_ready.token == "s3cr3t"
    v2_ready = next(e for e in _v2() if isinstance(e, ServerReady))
    assert v2_ready.token_sealed
    for ready in (v1_ready, v2_ready):
        for text in (event_json(ready), event_line(ready, None)):
            assert "s3cr3t" not in text
            assert v2_ready.token_sealed not in text
        assert decode_event(event_json(ready)) == redact(ready)


def test_text_lines_name_time_launch_phase_repository_and_what_happened() -> None:
    directory = LaunchDirectory()
    lines = [event_line(e, directory.learn(e)) for e in _v2()]
    assert lines[0] == (
        "2026-01-02T03:04:05.250Z  a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6  requested     gh/binder-examples/requirements/HEAD  "
        "from binder.example.org with build token"
    )
    assert lines[1].split()[3] == REQUIREMENTS
    assert "build 7f3a9c2e11 success in 2.9 s" in lines[9]
    assert lines[6].endswith("+ jupyterlab==4.4.1")


# -- pacing -----------------------------------------------------------------------


def test_paced_replay_waits_as_long_as_events_were_apart_divided_by_speed() -> None:
    pacer = Pacer(speed=2.0)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    stamps = [t0, t0 + timedelta(seconds=1), t0 + timedelta(seconds=4), t0 + timedelta(seconds=3), t0 + timedelta(seconds=6)]
    # The out-of-order event (4 s, then 3 s) plays at once; the next waits from the latest one seen.
    assert [pacer.delay_seconds(s) for s in stamps] == [0.0, 0.5, 1.5, 0.0, 1.0]
    with pytest.raises(ValueError):
        Pacer(speed=0)


# -- reading ------------------------------------------------------------------------


def test_subject_matcher_follows_nats_wildcards() -> None:
    events = subject_matcher("p.launch.*.events")
    assert events("p.launch.abc.events") and not events("p.launch.abc.log") and not events("p.repo.k.builds")
    assert not events("p.launch.abc.events.extra")
    everything = subject_matcher("p.launch.>")
    assert everything("p.launch.a.log") and not everything("p.launch") and not everything("q.launch.a.log")


def test_a_server_side_filter_is_used_only_when_it_keeps_a_small_share() -> None:
    assert prefers_server_filter(100, 1_000_000)  # one launch in a big log
    assert not prefers_server_filter(600_000, 1_200_000)  # phases among as many log lines
    assert prefers_server_filter(20_000, 1_000_000)
    assert not prefers_server_filter(200_000, 1_000_000)


# What a nats-server sends a pulling reader: messages with headers, a status, a
# ping, a message without headers, an error.
_SERVER_BYTES = (
    b"INFO {}\r\n"
    b"HMSG _INBOX.x 1 $JS.ACK.S.c.1.7.7.1767323045000000000.2 18 25\r\nNATS/1.0\r\nA: b\r\n\r\n{\"a\":1}\r\n"
    b"HMSG _INBOX.x 1 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n"
    b"PING\r\n"
    b"MSG _INBOX.x 1 $JS.ACK.S.c.1.8.8.1767323045000000001.0 2\r\nhi\r\n"
    b"+OK\r\n"
    b"-ERR 'Authorization Violation'\r\n"
)
_EXPECTED_FRAMES = [
    Frame(MSG, "_INBOX.x", "$JS.ACK.S.c.1.7.7.1767323045000000000.2", b'{"a":1}'),
    Frame(STATUS, "_INBOX.x", status="404"),
    Frame("ping"),
    Frame(MSG, "_INBOX.x", "$JS.ACK.S.c.1.8.8.1767323045000000001.0", b"hi"),
    Frame("err", data=b"Authorization Violation"),
]


def test_frames_are_split_whatever_the_reads_cut_them_into() -> None:
    assert FrameSplitter().feed(_SERVER_BYTES) == _EXPECTED_FRAMES
    for cut in range(1, len(_SERVER_BYTES)):
        splitter = FrameSplitter()
        assert splitter.feed(_SERVER_BYTES[:cut]) + splitter.feed(_SERVER_BYTES[cut:]) == _EXPECTED_FRAMES, cut
    bytewise = FrameSplitter()
    assert [f for i in range(len(_SERVER_BYTES)) for f in bytewise.feed(_SERVER_BYTES[i:i + 1])] == _EXPECTED_FRAMES


def test_wire_credentials_come_from_the_url() -> None:
    import urllib.parse

    options = _connect_options(urllib.parse.urlsplit("nats://al%40ice:p%3Ass@h:4222"))
    assert (options["user"], options["pass"]) == ("al@ice", "p:ss")
    assert _connect_options(urllib.parse.urlsplit("nats://s3cr3t@h:4222"))["auth_token"] == "s3cr3t"
    assert "user" not in _connect_options(urllib.parse.urlsplit("nats://h:4222"))


async def test_wire_leaves_tls_to_nats_py() -> None:
    with pytest.raises(WireUnavailable):
        await WireConnection.open("tls://127.0.0.1:1")


def test_ack_subjects_give_sequence_time_and_pending_with_or_without_a_domain() -> None:
    assert ack_fields("$JS.ACK.S.c.1.42.7.1767323045000000000.3") == (42, 1767323045000000000, 3)
    assert ack_fields("$JS.ACK.hub.ACCHASH.S.c.1.42.7.1767323045000000000.0.token") == (42, 1767323045000000000, 0)


def test_nats_url_comes_from_the_flag_then_settings_then_a_running_up() -> None:
    defaults = load_settings(environ={})
    configured = load_settings(environ={"BINDERFLOW_NATS_URL": "nats://nats.internal:4222"})
    up = {"nats_url": "nats://127.0.0.1:41234", "pid": 1}
    assert nats_url_for("nats://flag:1", configured, up) == "nats://flag:1"
    assert nats_url_for(None, configured, up) == "nats://nats.internal:4222"
    assert nats_url_for(None, defaults, up) == "nats://127.0.0.1:41234"
    assert nats_url_for(None, defaults, None) == defaults.nats_url


# -- ledger, export, stats ------------------------------------------------------------


def test_ledger_summarises_each_launch_and_build() -> None:
    ledger = _ledger()
    a = ledger.launches["a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"]
    assert (a.provider, a.repo_url, a.status, a.build_token) == ("gh", REQUIREMENTS, "success", True)
    assert a.seconds_to_ready == pytest.approx(5.75)
    c = ledger.launches["c1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"]
    assert (c.status, c.repo_url, c.resolved_ref) == ("failure", "", "")
    assert {b.build_id: (b.status, b.seconds) for b in ledger.builds.values()} == {"7f3a9c2e11": ("success", 2.9), "0e1d2c3b4a": ("failure", 1.7)}


def test_mybinder_export_has_the_archives_fields_and_values() -> None:
    lines = mybinder_lines(_ledger().launches.values())
    records = [json.loads(line) for line in lines]
    for record in records:
        jsonschema.validate(record, LAUNCH_SCHEMA)
    assert records[0] == {
        "timestamp": "2026-01-02T03:04:00+00:00",
        "schema": "binderhub.jupyter.org/launch",
        "version": 5,
        "provider": "GitHub",
        "spec": "binder-examples/requirements/HEAD",
        "ref": "1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d",
        "status": "success",
        "build_token": True,
        "origin": "binder.example.org",
    }
    # The archive's own spelling: json.dumps' separators, fields in the capsule's order.
    assert lines[0].startswith('{"timestamp": "2026-01-02T03:04:00+00:00", "schema": "binderhub.jupyter.org/launch", "version": 5, ')
    assert [(r["provider"], r["status"], r["ref"][:4]) for r in records] == [
        ("GitHub", "success", "1c2d"), ("GitHub", "success", "1c2d"), ("GitHub", "failure", ""), ("Git", "failure", "9f8e"),
    ]
    assert [r["timestamp"] for r in records] == sorted(r["timestamp"] for r in records)


def test_mybinder_export_can_keep_only_successes_and_add_request_origin() -> None:
    records = [json.loads(line) for line in mybinder_lines(_ledger().launches.values(), only_success=True, with_request_origin=True)]
    assert [r["status"] for r in records] == ["success", "success"]
    assert records[0]["request_origin"] == "https://binder.example.org"
    wider = {**LAUNCH_SCHEMA, "properties": {**LAUNCH_SCHEMA["properties"], "request_origin": {"type": "string"}}}
    for record in records:
        jsonschema.validate(record, wider)


def test_export_skips_build_only_requests_unfinished_launches_and_launches_without_their_request() -> None:
    ledger = _ledger()
    ledger.launches["a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"].build_only = True
    ledger.launches["b1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"].requested_at = None
    ledger.launches["c1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"].ended_at = None
    records = [json.loads(line) for line in mybinder_lines(ledger.launches.values())]
    assert [r["provider"] for r in records] == ["Git"]


def test_archive_timestamps_are_rounded_down_to_the_minute_in_utc() -> None:
    assert archive_timestamp(datetime(2026, 1, 2, 5, 4, 59, 999999, tzinfo=timezone(timedelta(hours=2)))) == "2026-01-02T03:04:00+00:00"


def test_stats_of_one_repository_count_launches_builds_and_durations() -> None:
    [stats] = repo_stats(_ledger(), REQUIREMENTS + ".git/")
    assert stats.repo_url == REQUIREMENTS
    assert (stats.launches, stats.launches_by_status) == (2, {"success": 2})
    assert (stats.builds, stats.builds_by_status) == (1, {"success": 1})
    assert stats.build_seconds is not None and stats.build_seconds.max_seconds == 2.9
    assert stats.seconds_to_ready is not None
    assert (stats.seconds_to_ready.count, stats.seconds_to_ready.max_seconds) == (2, pytest.approx(5.75))
    assert repo_stats(_ledger(), "https://example.org/never-launched") == []


def test_stats_rank_repositories_by_launches() -> None:
    ranked = repo_stats(_ledger(), top=10)
    assert [(r.repo_url, r.launches) for r in ranked] == [(REQUIREMENTS, 2), (UNRESOLVED, 1), (BROKEN, 1)]
    assert ranked[2].builds_by_status == {"failure": 1} and ranked[2].launches_by_status == {"failure": 1}
    assert len(repo_stats(_ledger(), top=1)) == 1


def test_distribution_is_median_nearest_rank_p90_and_max() -> None:
    d = distribution(float(x) for x in range(1, 11))
    assert d is not None and (d.count, d.median_seconds, d.p90_seconds, d.max_seconds) == (10, 5.5, 9.0, 10.0)
    one = distribution([3.0])
    assert one is not None and one.p90_seconds == 3.0
    assert distribution([]) is None

