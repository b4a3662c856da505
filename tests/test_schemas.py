"""Wire shapes: BinderHub-compatible events, forward compatibility, id rules, subject names."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

from schemas import (
    COMMAND_TYPES,
    PHASES,
    SCHEMA_VERSION,
    SERVICE_NAMES,
    BuildImage,
    BuildLogged,
    BuildWaiting,
    ImageBuilt,
    ImagePushing,
    LaunchFailed,
    LaunchRequest,
    RepoFetching,
    ResolvedRepo,
    ResolveRef,
    ServerLaunching,
    ServerReady,
    StartServer,
    Subjects,
    decode_command,
    decode_phase_event,
    encode_event,
    event_to_wire,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
LID = "launch-0001"
SHA = "0123456789abcdef0123456789abcdef01234567"
FIXTURE = Path(__file__).parent / "fixtures" / "events_v1.jsonl"
ENVELOPE = {"launch_id", "event_id", "timestamp", "schema_version"}
BINDERHUB_READY = {
    "phase", "message", "url", "token", "image", "repo_url", "binder_ref_url",
    "binder_launch_host", "binder_request", "binder_persistent_request",
}


def _ready() -> ServerReady:
    return ServerReady(
        launch_id=LID,
        event_id=f"{LID}.launcher.ready",
        timestamp=NOW,
        message="server running at http://127.0.0.1:40001/user/x/\n",
        url="http://127.0.0.1:40001/user/x/",
        token="s3cr3t",
        image="env-name",
        repo_url="https://example.org/repo",
        binder_ref_url="https://example.org/repo/tree/" + SHA,
        binder_launch_host="http://127.0.0.1:8585/",
        binder_request="v2/git/x/main",
        binder_persistent_request="v2/git/x/" + SHA,
    )


def _one_of_each() -> list:
    common: dict[str, Any] = {"launch_id": LID, "timestamp": NOW, "message": "m\n"}
    return [
        BuildWaiting(event_id="e0", **common),
        RepoFetching(event_id="e1", **common),
        BuildLogged(event_id="e2", **common),
        ImagePushing(event_id="e3", progress={"layer": 3}, **common),
        ImageBuilt(event_id="e4", image_name="env-name", **common),
        ServerLaunching(event_id="e5", **common),
        _ready(),
        LaunchFailed(event_id="e7", **common),
    ]


def test_server_ready_has_exactly_binderhubs_keys_plus_envelope() -> None:
    wire = json.loads(event_to_wire(_ready()))
    # As stored: plus the sealed token (the gateway drops it for clients).
    assert set(wire) == BINDERHUB_READY | ENVELOPE | {"token_sealed"}
    assert wire["phase"] == "ready"
    assert wire["url"] == "http://127.0.0.1:40001/user/x/"
    assert wire["token"] == "s3cr3t"
    assert wire["schema_version"] == SCHEMA_VERSION
    assert wire["timestamp"] == "2024-05-01T12:00:00Z"


def test_image_built_uses_wire_key_image_name() -> None:
    wire = json.loads(encode_event(ImageBuilt(launch_id=LID, event_id="e", timestamp=NOW, image_name="env-1")))
    assert wire["imageName"] == "env-1"
    assert "image_name" not in wire
    assert wire["phase"] == "built"


def test_every_phase_is_covered_once() -> None:
    assert [e.phase for e in _one_of_each()] == list(PHASES)


@pytest.mark.parametrize("event", _one_of_each(), ids=PHASES)
def test_decode_round_trips_every_phase(event) -> None:
    decoded = decode_phase_event(encode_event(event))
    assert decoded == event
    assert type(decoded) is type(event)
    assert decode_phase_event(event_to_wire(event)) == event


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    wire = json.loads(event_to_wire(_ready()))
    wire["added_in_v1_5"] = {"nested": [1, 2]}
    wire["another"] = "x"
    assert decode_phase_event(json.dumps(wire)) == _ready()


def test_missing_optional_fields_take_defaults() -> None:
    event = decode_phase_event(json.dumps({"phase": "pushing", "launch_id": LID, "event_id": "e", "timestamp": "2024-05-01T12:00:00Z"}))
    assert isinstance(event, ImagePushing)
    assert event.message == ""
    assert event.progress == {}
    assert event.schema_version == SCHEMA_VERSION


def test_unknown_phase_is_rejected() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_phase_event(json.dumps({"phase": "teleporting", "launch_id": LID, "event_id": "e", "timestamp": "2024-05-01T12:00:00Z"}))


def test_stored_v1_events_still_decode() -> None:
    lines = [ln for ln in FIXTURE.read_text().splitlines() if ln.strip()]
    events = [decode_phase_event(ln) for ln in lines]
    assert [e.phase for e in events] == list(PHASES)
    assert all(e.schema_version == 1 and e.launch_id == "0f3a9c2e-launch" for e in events)
    built = events[PHASES.index("built")]
    assert isinstance(built, ImageBuilt) and built.image_name == "git-example-org-repo-0123456789abcdef"
    ready = events[PHASES.index("ready")]
    assert isinstance(ready, ServerReady) and ready.token == "s3cr3t"
    pushing = events[PHASES.index("pushing")]
    assert isinstance(pushing, ImagePushing) and pushing.progress == {"layer-1": 50}
    # Re-encoding keeps every key a v1 writer wrote.
    for line, event in zip(lines, events):
        assert set(json.loads(encode_event(event))) >= set(json.loads(line))


def _waiting_with_id(launch_id: str) -> str:
    return json.dumps({"phase": "waiting", "launch_id": launch_id, "event_id": "e", "timestamp": "2024-05-01T12:00:00Z"})


@pytest.mark.parametrize("launch_id", ["abcd1234", "0f3a9c2e-launch", "a" * 64])
def test_valid_launch_ids_decode(launch_id: str) -> None:
    assert decode_phase_event(_waiting_with_id(launch_id)).launch_id == launch_id


@pytest.mark.parametrize("launch_id", ["Launch-0001", "launch.0001", "abc", "", "-launch-0001", "launch_0001", "launch 0001", "a" * 65, "launch-*>"])
def test_invalid_launch_ids_are_rejected_at_decode(launch_id: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_phase_event(_waiting_with_id(launch_id))


def test_launch_id_with_trailing_newline_is_rejected_at_decode() -> None:
    # A launch id becomes a NATS subject token; a newline must never get that far.
    with pytest.raises(msgspec.ValidationError):
        decode_phase_event(_waiting_with_id("launch-0001\n"))


def _build_command(resolved_ref: str) -> bytes:
    repo = ResolvedRepo(
        repo_url="u", ref="main", resolved_ref=resolved_ref, ref_url="u", clone_url="u", image_name="i",
        binder_request="v2/git/u/main", binder_persistent_request="v2/git/u/" + resolved_ref,
    )
    return encode_event(BuildImage(command_id="c", launch_id=LID, issued_at=NOW, request=LaunchRequest(provider="git", spec="u/main"), repo=repo))


def test_command_round_trips_and_checks_the_commit_sha() -> None:
    decoded = decode_command(_build_command(SHA))
    assert isinstance(decoded, BuildImage) and decoded.repo.resolved_ref == SHA
    for bad in ("main", SHA.upper(), SHA[:12]):
        with pytest.raises(msgspec.ValidationError):
            decode_command(_build_command(bad))


# -- Subjects -------------------------------------------------------------------


def test_subject_names_use_the_prefix() -> None:
    s = Subjects("t1")
    names = [*(s.commands(c) for c in COMMAND_TYPES), s.all_commands, s.launch_events(LID), s.all_launch_events, s.heartbeat("builder"), s.all_heartbeats]
    assert all(n.startswith("t1.") for n in names)
    assert s.launch_events(LID) == f"t1.launch.{LID}.events"
    assert s.durable(ResolveRef) == "t1-resolver"
    assert s.commands_stream != s.events_stream
    assert Subjects().prefix == "binderflow"


def test_each_command_type_has_its_own_queue_and_consumer_under_the_command_stream() -> None:
    s = Subjects("t1")
    # The wire names deploy/, docs/asyncapi.json and running installations use.
    assert [s.commands(c) for c in (ResolveRef, BuildImage, StartServer)] == ["t1.cmd.resolve", "t1.cmd.build", "t1.cmd.launch"]
    assert [s.durable(c) for c in (ResolveRef, BuildImage, StartServer)] == ["t1-resolver", "t1-builder", "t1-launcher"]
    assert {c.consumer for c in COMMAND_TYPES} == set(SERVICE_NAMES) - {"gateway"}
    assert all(s.commands(c).startswith(s.all_commands.rstrip(">")) for c in COMMAND_TYPES)
    assert s.commands_stream != s.events_stream
    assert Subjects().prefix == "binderflow"


def test_namespaces_do_not_share_subjects_or_streams() -> None:
    a, b = Subjects("one"), Subjects("two")
    assert a.events_stream != b.events_stream
    assert a.commands_stream != b.commands_stream
    assert a.all_launch_events != b.all_launch_events


def test_prefixes_differing_in_dash_and_underscore_do_not_share_streams() -> None:
    # Both are valid prefixes; ensure_streams would otherwise re-point one namespace's stream at the other's subjects.
    a, b = Subjects("team-a"), Subjects("team_a")
    assert a.events_stream != b.events_stream
    assert a.commands_stream != b.commands_stream


@pytest.mark.parametrize("prefix", ["", "Upper", "a.b", "a b", "a*", "a>", "-a", "x" * 65])
def test_invalid_prefix_raises_value_error(prefix: str) -> None:
    with pytest.raises(ValueError):
        Subjects(prefix)
