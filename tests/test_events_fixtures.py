"""Stored events of every schema version still decode with the one decoder the tools use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import FACT_KINDS, PHASES, SCHEMA_VERSION, LoggedEvent, ServerReady, decode_event, encode_event
from schemas.identity import log_build_id
from services.runtime.eventlog import build_log_text
from services.runtime.sealing import TokenSealer

FIXTURES = Path(__file__).parent / "fixtures"
# The key the v2 fixture's tokens were sealed under.
FIXTURE_KEY = bytes(range(32))


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


@pytest.mark.parametrize(("name", "version"), [("events_v1.jsonl", 1), ("events_v2.jsonl", 2), ("events_v3.jsonl", 3)])
def test_every_stored_event_decodes_and_keeps_its_schema_version(name: str, version: int) -> None:
    events = [decode_event(line) for line in _lines(name)]
    assert events and all(e.schema_version == version for e in events)
    for line, event in zip(_lines(name), events):
        # Every field the writer stored is one the current types still carry.
        assert set(json.loads(line)) <= set(json.loads(encode_event(event)))


@pytest.mark.parametrize("name", ["events_v2.jsonl", "events_v3.jsonl"])
def test_fixture_has_every_fact_and_phase_a_launch_can_meet(name: str) -> None:
    kinds = {decode_event(line).phase for line in _lines(name)}
    assert set(FACT_KINDS) <= kinds
    assert {"waiting", "fetching", "building", "pushing", "built", "launching", "ready", "failed"} <= kinds <= set(PHASES) | set(FACT_KINDS)


def test_the_newest_version_has_a_fixture() -> None:
    assert (FIXTURES / f"events_v{SCHEMA_VERSION}.jsonl").is_file()  # a new version needs its own fixture beside these


def test_build_log_lines_name_their_build_in_v3_and_by_their_id_before() -> None:
    """v3 lines carry `build_id`; v2 lines only name it in their event id: both read alike."""
    for name in ("events_v2.jsonl", "events_v3.jsonl"):
        lines = [e for e in map(decode_event, _lines(name)) if e.phase in ("fetching", "building", "pushing")]
        assert lines and {log_build_id(e) for e in lines} == {"7f3a9c2e11", "0e1d2c3b4a"}, name
    v3 = [decode_event(line) for line in _lines("events_v3.jsonl")]
    assert all(getattr(e, "build_id") in ("7f3a9c2e11", "0e1d2c3b4a") for e in v3 if e.phase in ("fetching", "building", "pushing"))
    # The follower's copy of the leader's log reads as the leader's log.
    leader, follower = v3[0].launch_id, v3[-1].launch_id
    def log_of(launch_id: str) -> str:
        return "".join(
            line for line in build_log_text([LoggedEvent(n, e) for n, e in enumerate(v3) if e.launch_id == launch_id]).splitlines(keepends=True)
            if not line.startswith(("Waiting", "Found built", "Built image"))
        )
    assert log_of(follower) == log_of(leader)


def test_v2_ready_events_hold_the_token_sealed_for_their_launch_only() -> None:
    readies = [e for e in map(decode_event, _lines("events_v2.jsonl")) if isinstance(e, ServerReady)]
    assert len(readies) == 2
    sealer = TokenSealer(FIXTURE_KEY)
    for ready in readies:
        assert ready.token == ""
        assert sealer.unseal(ready.token_sealed, ready.launch_id) == "fixture-jupyter-token"
    assert "fixture-jupyter-token" not in (FIXTURES / "events_v2.jsonl").read_text()
