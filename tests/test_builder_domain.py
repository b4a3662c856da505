"""The builder's pure decisions: build progress to phase events, failures."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from schemas import BuildImage, BuildLogged, ImageBuilt, ImagePushing, LaunchFailed, LaunchRequest, RepoFetching, StartServer
from schemas.commands import ResolvedRepo
from services.builder.domain import MAX_LOG_LINE_CHARS, LogBudget, build_failed, event_for_progress, split_log_text, start_after_build
from services.builder.executors.base import BuildFinished, BuildProgress, LogLine, PhaseChanged

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
LATER = datetime(2024, 5, 1, 12, 5, tzinfo=timezone.utc)
SHA = "0123456789abcdef0123456789abcdef01234567"


def _command(launch_id: str = "launch-0001") -> BuildImage:
    url = "git://127.0.0.1/repo"
    return BuildImage(
        command_id=f"{launch_id}.build",
        launch_id=launch_id,
        issued_at=NOW,
        request=LaunchRequest(provider="git", spec="git%3A%2F%2F127.0.0.1%2Frepo/main"),
        repo=ResolvedRepo(
            repo_url=url,
            ref="main",
            resolved_ref=SHA,
            ref_url=url,
            clone_url=url,
            image_name="git-127-0-0-1-repo-0123456789abcdef",
            binder_request="v2/git/git%3A%2F%2F127.0.0.1%2Frepo/main",
            binder_persistent_request=f"v2/git/git%3A%2F%2F127.0.0.1%2Frepo/{SHA}",
        ),
    )


def test_log_line_becomes_building_event_with_newline() -> None:
    event = event_for_progress(_command(), "b1", 0, LogLine("Collecting numpy"), NOW)
    assert isinstance(event, BuildLogged)
    assert event.phase == "building"
    assert event.message == "Collecting numpy\n"
    assert event.launch_id == "launch-0001"
    assert event.timestamp == NOW


def test_fetching_phase_becomes_fetching_event() -> None:
    event = event_for_progress(_command(), "b1", 1, PhaseChanged("fetching", "Fetching repo...\n"), NOW)
    assert isinstance(event, RepoFetching)
    assert event.message == "Fetching repo...\n"


def test_pushing_phase_becomes_pushing_event() -> None:
    event = event_for_progress(_command(), "b1", 2, PhaseChanged("pushing", "Storing environment...\n"), NOW)
    assert isinstance(event, ImagePushing)
    assert event.message == "Storing environment...\n"


def test_building_phase_becomes_a_log_line_of_its_build() -> None:
    event = event_for_progress(_command(), "b1", 3, PhaseChanged("building", "Installing...\n"), NOW)
    assert isinstance(event, BuildLogged)
    assert event.message == "Installing...\n" and event.build_id == "b1"


def test_new_build_finished_says_built() -> None:
    event = event_for_progress(_command(), "b1", 4, BuildFinished("img-1"), NOW)
    assert isinstance(event, ImageBuilt)
    assert event.image_name == "img-1"
    assert event.message == "Built image, launching...\n"


def test_cached_build_finished_says_found() -> None:
    event = event_for_progress(_command(), "b1", 4, BuildFinished("img-1", was_cached=True), NOW)
    assert isinstance(event, ImageBuilt)
    assert event.message == "Found built image, launching...\n"


def test_unknown_progress_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        event_for_progress(_command(), "b1", 0, "not progress", NOW)  # type: ignore[arg-type]


PROGRESS: list[BuildProgress] = [LogLine("a"), PhaseChanged("fetching", "f\n"), PhaseChanged("pushing", "p\n"), LogLine("a"), BuildFinished("img")]


def test_event_ids_are_unique_per_seq() -> None:
    ids = [event_for_progress(_command(), "b1", seq, p, NOW).event_id for seq, p in enumerate(PROGRESS)]
    assert len(set(ids)) == len(ids)


def test_event_ids_are_stable_for_same_inputs() -> None:
    # A publish retried after a lost ack must carry the same id (JetStream de-duplicates it).
    for seq, p in enumerate(PROGRESS):
        assert event_for_progress(_command(), "b1", seq, p, NOW).event_id == event_for_progress(_command(), "b1", seq, p, LATER).event_id


def test_event_ids_differ_between_build_attempts_and_launches() -> None:
    one = event_for_progress(_command(), "b1", 0, LogLine("x"), NOW).event_id
    assert event_for_progress(_command(), "b2", 0, LogLine("x"), NOW).event_id != one
    assert event_for_progress(_command("launch-0002"), "b1", 0, LogLine("x"), NOW).event_id != one


def test_build_failed_message() -> None:
    event = build_failed(_command(), "b1", "uv pip install exited with 1\n\n", NOW)
    assert isinstance(event, LaunchFailed)
    assert event.message.startswith("Build failed:")
    assert event.message == "Build failed: uv pip install exited with 1\n"
    assert event.launch_id == "launch-0001"


def test_build_failed_id_is_stable_and_distinct_from_progress() -> None:
    failed = build_failed(_command(), "b1", "x", NOW).event_id
    assert failed == build_failed(_command(), "b1", "y", LATER).event_id
    assert failed not in {event_for_progress(_command(), "b1", seq, p, NOW).event_id for seq, p in enumerate(PROGRESS)}
    assert build_failed(_command(), "b2", "x", NOW).event_id != failed


def test_start_after_build_carries_repo_and_request() -> None:
    command = _command()
    start = start_after_build(command, NOW)
    assert isinstance(start, StartServer)
    assert start.repo == command.repo
    assert start.request == command.request
    assert start.command_id == start_after_build(command, LATER).command_id


def test_built_event_has_one_id_per_launch_across_build_attempts() -> None:
    finished = BuildFinished(image_name="env-1")
    first = event_for_progress(_command(), "attempt1", 7, finished, NOW).event_id
    assert event_for_progress(_command(), "attempt2", 42, finished, LATER).event_id == first


# -- bounded build logs ----------------------------------------------------------


def test_a_long_line_is_split_into_pieces_that_fit_one_message() -> None:
    assert split_log_text("short") == ["short"] and split_log_text("") == [""]
    pieces = split_log_text("a" * 40_000)
    assert [len(p) for p in pieces] == [MAX_LOG_LINE_CHARS, MAX_LOG_LINE_CHARS, 40_000 - 2 * MAX_LOG_LINE_CHARS]


def test_the_log_budget_admits_lines_and_bytes_up_to_its_limits_then_counts_what_it_drops() -> None:
    budget = LogBudget(max_lines=3, max_bytes=1000)
    assert [budget.admit(t) for t in ("a", "bb", "ccc", "dddd", "e")] == [True, True, True, False, False]
    assert budget.is_over and (budget.dropped_lines, budget.dropped_bytes) == (2, 7)
    assert "2 more lines (7 bytes)" in budget.summary() and "3 lines, 1000 bytes" in budget.notice()
    by_bytes = LogBudget(max_lines=100, max_bytes=11)  # a line counts its newline too
    assert [by_bytes.admit(t) for t in ("12345", "1234", "1", "12")] == [True, True, False, False]
    # Once over, nothing more is admitted, even a line that would fit: the log stays one cut.
    assert not by_bytes.admit("")
