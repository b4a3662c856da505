"""Event identity (schemas/identity.py): every id a writer builds parses back to what built it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import BuildLogged, ImageBuilt, RepoFetching, ServerReady
from schemas.identity import (
    GIVE_UP_BUILD_ID,
    EventKey,
    build_event_id,
    command_id,
    follow_event_id,
    index_msg_id,
    is_launch_id,
    launch_build_id,
    launcher_event_id,
    log_build_id,
    parse_event_id,
    requested_id,
    resolver_event_id,
)

NOW = datetime(2026, 12, 3, tzinfo=timezone.utc)
launch_ids = st.from_regex(r"[a-z0-9][a-z0-9-]{7,63}", fullmatch=True)
build_ids = st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True)
steps = st.sampled_from(["started", "ended", "failed"])


@given(launch_ids, build_ids, st.integers(min_value=0, max_value=10**9))
def test_numbered_build_events_parse_back(launch_id: str, build_id: str, n: int) -> None:
    assert parse_event_id(build_event_id(launch_id, build_id, n)) == EventKey(launch_id, "build", build_id=build_id, position=n)
    assert parse_event_id(follow_event_id(launch_id, build_id, n)) == EventKey(launch_id, "follow", build_id=build_id, position=n)


@given(launch_ids, build_ids, steps)
def test_named_steps_of_an_attempt_parse_back(launch_id: str, build_id: str, step: str) -> None:
    assert parse_event_id(build_event_id(launch_id, build_id, step)) == EventKey(launch_id, "build", build_id=build_id, step=step)  # type: ignore[arg-type]


@given(launch_ids)
def test_one_per_launch_ids_parse_back_and_never_collide(launch_id: str) -> None:
    ids = [
        requested_id(launch_id),
        *(resolver_event_id(launch_id, s) for s in ("waiting", "built", "ready", "failed", "notice", "resolved")),
        launch_build_id(launch_id, "built"),
        launch_build_id(launch_id, "ready"),
        *(launcher_event_id(launch_id, s) for s in ("launching", "ready", "failed")),
        build_event_id(launch_id, GIVE_UP_BUILD_ID, "failed"),
    ]
    assert len(set(ids)) == len(ids)
    keys = [parse_event_id(i) for i in ids]
    assert all(k is not None and k.launch_id == launch_id for k in keys)
    assert keys[0] == EventKey(launch_id, "gateway", step="requested")
    assert keys[7] == EventKey(launch_id, "build", step="built")
    assert keys[9] == EventKey(launch_id, "launch", step="launching")
    # Commands and index copies are de-duplication keys, not event ids.
    assert parse_event_id(command_id(launch_id, "build")) is None
    assert parse_event_id(index_msg_id(build_event_id(launch_id, "b", "started"))) is None


@pytest.mark.parametrize("text", ["", "short.build.b.1", "UPPERCASE1.build.b.1", "launch-0001.nobody.x", "launch-0001.build", "launch-0001.build.b.1.2"])
def test_what_is_not_an_event_id_parses_to_none(text: str) -> None:
    assert parse_event_id(text) is None


def test_build_ids_cannot_smuggle_a_dot_into_the_grammar() -> None:
    with pytest.raises(ValueError):
        build_event_id("launch-0001", "b.1", 1)
    assert is_launch_id("launch-0001") and not is_launch_id("launch-0001\n")


def test_log_lines_name_their_build_by_field_or_for_older_events_by_id() -> None:
    lid = "launch-0001"
    typed = BuildLogged(launch_id=lid, event_id=build_event_id(lid, "b2", 3), timestamp=NOW, build_id="b2")
    older = RepoFetching(launch_id=lid, event_id=build_event_id(lid, "b1", 0), timestamp=NOW)
    # A follower's copy keeps the line's own build id, whatever its event id says.
    copied = BuildLogged(launch_id="launch-0002", event_id=follow_event_id("launch-0002", "b2", 17), timestamp=NOW, build_id="b2")
    assert (log_build_id(typed), log_build_id(older), log_build_id(copied)) == ("b2", "b1", "b2")
    built = ImageBuilt(launch_id=lid, event_id=launch_build_id(lid, "built"), timestamp=NOW, image_name="x")
    assert log_build_id(built) == ""
    ready = ServerReady(
        launch_id=lid, event_id=launcher_event_id(lid, "ready"), timestamp=NOW, url="", token="", image="", repo_url="",
        binder_ref_url="", binder_launch_host="", binder_request="", binder_persistent_request="",
    )
    assert log_build_id(ready) == ""
