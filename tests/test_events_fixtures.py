"""Stored events of every schema version still decode with the one decoder the tools use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas import FACT_KINDS, PHASES, SCHEMA_VERSION, ServerReady, decode_event, encode_event
from services.runtime.sealing import TokenSealer

FIXTURES = Path(__file__).parent / "fixtures"
# The key the v2 fixture's tokens were sealed under.
FIXTURE_KEY = bytes(range(32))


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


@pytest.mark.parametrize(("name", "version"), [("events_v1.jsonl", 1), ("events_v2.jsonl", 2)])
def test_every_stored_event_decodes_and_keeps_its_schema_version(name: str, version: int) -> None:
    events = [decode_event(line) for line in _lines(name)]
    assert events and all(e.schema_version == version for e in events)
    for line, event in zip(_lines(name), events):
        # Every field the writer stored is one the current types still carry.
        assert set(json.loads(line)) <= set(json.loads(encode_event(event)))


def test_v2_fixture_has_every_fact_and_phase_a_launch_can_meet() -> None:
    kinds = {decode_event(line).phase for line in _lines("events_v2.jsonl")}
    assert set(FACT_KINDS) <= kinds
    assert {"waiting", "fetching", "building", "pushing", "built", "launching", "ready", "failed"} <= kinds <= set(PHASES) | set(FACT_KINDS)
    assert SCHEMA_VERSION == 2  # a new version needs its own fixture beside these


def test_v2_ready_events_hold_the_token_sealed_for_their_launch_only() -> None:
    readies = [e for e in map(decode_event, _lines("events_v2.jsonl")) if isinstance(e, ServerReady)]
    assert len(readies) == 2
    sealer = TokenSealer(FIXTURE_KEY)
    for ready in readies:
        assert ready.token == ""
        assert sealer.unseal(ready.token_sealed, ready.launch_id) == "fixture-jupyter-token"
    assert "fixture-jupyter-token" not in (FIXTURES / "events_v2.jsonl").read_text()
