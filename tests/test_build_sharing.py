"""Many watchers, one build: launches of an environment under way follow its build.

Three layers: the pure rules of `services.builder.sharing` as plain calls; the
builder's handlers in this process against the real nats-server, with build
executors that print numbered lines (doubles of the BuildExecutor protocol); and
the whole pipeline through the gateway, with one and with two builder replicas.
"""

from __future__ import annotations

import asyncio
import http.server
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Iterator

import nats
import pytest

from schemas import (
    BuildEnded,
    BuildImage,
    BuildLogged,
    BuildStarted,
    ImageBuilt,
    ImagePushing,
    LaunchFailed,
    LaunchRequest,
    RepoFetching,
    ServerLaunching,
    Subjects,
)
from schemas.commands import ResolvedRepo
from services.builder import domain
from services.builder.domain import MAX_LOG_LINE_CHARS
from services.builder.executors.base import BuildError, BuildFinished, BuildProgress, LogLine, PhaseChanged
from services.builder.handlers import BuilderHandlers, ClaimBucket
from services.builder.sharing import (
    BuildClaim,
    ClaimDecision,
    ClaimState,
    LeaderFailed,
    LeaderSucceeded,
    Relay,
    claim_key,
    decide_claim,
    decode_claim,
    encode_claim,
    follow_ended,
    follow_failed,
    follow_started,
    is_stale,
    judge_followed_claim,
    read_leader_event,
    relayed_event,
)
from services.runtime.bus import EventPublisher, ensure_streams
from schemas import LoggedEvent
from services.runtime.eventlog import read_launch
from services.runtime.settings import Settings

from .harness import GitServer, Launch, Pipeline, launch, spec_for

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
SHA = "0123456789abcdef0123456789abcdef01234567"
STALE_AFTER = 15.0


def _command(launch_id: str = "launch-0001", image_name: str = "git-127-0-0-1-repo-0123456789abcdef", build_only: bool = False) -> BuildImage:
    url = "git://127.0.0.1/repo"
    return BuildImage(
        command_id=f"{launch_id}.build",
        launch_id=launch_id,
        issued_at=NOW,
        request=LaunchRequest(provider="git", spec="git%3A%2F%2F127.0.0.1%2Frepo/main", build_only=build_only),
        repo=ResolvedRepo(
            repo_url=url,
            ref="main",
            resolved_ref=SHA,
            ref_url=url,
            clone_url=url,
            image_name=image_name,
            binder_request="v2/git/git%3A%2F%2F127.0.0.1%2Frepo/main",
            binder_persistent_request=f"v2/git/git%3A%2F%2F127.0.0.1%2Frepo/{SHA}",
        ),
    )


def _claim(launch_id: str = "leader-0001", build_id: str = "b1", renewed_at: datetime = NOW) -> BuildClaim:
    return BuildClaim(launch_id=launch_id, build_id=build_id, builder="host-1-abc", renewed_at=renewed_at)


# -- the pure rules ----------------------------------------------------------

_KV_KEY_RE = re.compile(r"^[-/_=.a-zA-Z0-9]+\Z")


@pytest.mark.parametrize("name", ["git-127-0-0-1-repo-0123456789abcdef", "r2d-abc123", "a"])
def test_environment_names_are_their_own_claim_keys(name: str) -> None:
    assert claim_key(name) == name


@pytest.mark.parametrize(
    "name",
    ["registry.example.org:5000/binder/env:abc", "has space", "trailing.", ".leading", "two..dots", "=looks-encoded", "ünïcode", "a*b>c"],
)
def test_other_image_names_become_valid_distinct_claim_keys(name: str) -> None:
    key = claim_key(name)
    assert _KV_KEY_RE.match(key), key
    assert not key.startswith(".") and not key.endswith(".") and ".." not in key
    assert key != name
    # An encoded key never equals a plain name's key (plain names hold no "=").
    assert key.startswith("=")


def test_claim_keys_of_different_names_differ() -> None:
    names = ["a:b", "a/b", "a_b", "=YTpi", "a b", "a.b", "A.B"]
    assert len({claim_key(n) for n in names}) == len(names)


def test_claims_round_trip_and_an_unreadable_one_counts_as_abandoned() -> None:
    claim = _claim()
    assert decode_claim(encode_claim(claim)) == claim
    garbage = decode_claim(b"not json")
    assert is_stale(garbage, NOW, STALE_AFTER)
    assert decide_claim(garbage, "launch-0001", NOW, STALE_AFTER) is ClaimDecision.TAKE_OVER


def test_no_claim_means_claim_it() -> None:
    assert decide_claim(None, "launch-0001", NOW, STALE_AFTER) is ClaimDecision.CLAIM


def test_a_fresh_claim_of_another_launch_is_followed() -> None:
    recent = _claim(renewed_at=NOW - timedelta(seconds=STALE_AFTER - 1))
    assert decide_claim(recent, "launch-0001", NOW, STALE_AFTER) is ClaimDecision.FOLLOW


def test_a_stale_claim_is_taken_over() -> None:
    old = _claim(renewed_at=NOW - timedelta(seconds=STALE_AFTER + 1))
    assert decide_claim(old, "launch-0001", NOW, STALE_AFTER) is ClaimDecision.TAKE_OVER


def test_a_claim_of_the_same_launch_is_an_earlier_attempt_and_taken_over_at_once() -> None:
    mine = _claim(launch_id="launch-0001", renewed_at=NOW)
    assert decide_claim(mine, "launch-0001", NOW, STALE_AFTER) is ClaimDecision.TAKE_OVER


def test_followed_claim_states() -> None:
    followed = _claim()
    assert judge_followed_claim(followed, followed, NOW + timedelta(seconds=1), STALE_AFTER) is ClaimState.HELD
    renewed = _claim(renewed_at=NOW + timedelta(seconds=10))
    assert judge_followed_claim(followed, renewed, NOW + timedelta(seconds=20), STALE_AFTER) is ClaimState.HELD
    assert judge_followed_claim(followed, None, NOW, STALE_AFTER) is ClaimState.GONE
    assert judge_followed_claim(followed, _claim(build_id="b2"), NOW, STALE_AFTER) is ClaimState.CHANGED
    assert judge_followed_claim(followed, _claim(launch_id="other-0001"), NOW, STALE_AFTER) is ClaimState.CHANGED
    assert judge_followed_claim(followed, followed, NOW + timedelta(seconds=STALE_AFTER + 1), STALE_AFTER) is ClaimState.STALE


LEADER = "leader-0001"


@pytest.mark.parametrize(
    "event",
    [
        RepoFetching(launch_id=LEADER, event_id=f"{LEADER}.build.b1.1", timestamp=NOW, message="Fetching...\n"),
        BuildLogged(launch_id=LEADER, event_id=f"{LEADER}.build.b1.2", timestamp=NOW, message="line\n"),
        ImagePushing(launch_id=LEADER, event_id=f"{LEADER}.build.b1.30", timestamp=NOW, message="Storing...\n"),
    ],
)
def test_the_followed_builds_log_is_relayed(event: RepoFetching) -> None:
    assert read_leader_event(_claim(), event) == Relay(event)


@pytest.mark.parametrize(
    "event",
    [
        # An earlier attempt of the leader's launch (its builder died): not this build's log.
        BuildLogged(launch_id=LEADER, event_id=f"{LEADER}.build.b0.2", timestamp=NOW, message="old line\n"),
        # A prefix of this build's id is another build.
        BuildLogged(launch_id=LEADER, event_id=f"{LEADER}.build.b12.2", timestamp=NOW, message="line\n"),
        # The leader's own launch goes on after its build: none of the follower's business.
        ServerLaunching(launch_id=LEADER, event_id=f"{LEADER}.launch.1", timestamp=NOW, message="Launching\n"),
        BuildStarted(launch_id=LEADER, event_id=f"{LEADER}.build.b1.started", timestamp=NOW, build_id="b1", image_name="img"),
        # An internal error ends the attempt but gets retried: only the claim going away tells.
        BuildEnded(launch_id=LEADER, event_id=f"{LEADER}.build.b1.ended", timestamp=NOW, build_id="b1", image_name="img", status="failure", seconds=3.0),
        BuildEnded(launch_id=LEADER, event_id=f"{LEADER}.build.b0.ended", timestamp=NOW, build_id="b0", image_name="img", status="success", seconds=3.0),
        LaunchFailed(launch_id=LEADER, event_id=f"{LEADER}.build.final.failed", timestamp=NOW, message="Build failed: internal error\n"),
        LaunchFailed(launch_id=LEADER, event_id=f"{LEADER}.build.b0.failed", timestamp=NOW, message="Build failed: old\n"),
    ],
)
def test_other_events_of_the_leaders_launch_are_no_news(event: BuildLogged) -> None:
    assert read_leader_event(_claim(), event) is None


def test_the_leader_succeeded_when_its_launch_is_built_or_its_build_ended_well() -> None:
    built = ImageBuilt(launch_id=LEADER, event_id=f"{LEADER}.build.built", timestamp=NOW, image_name="img", message="Built image, launching...\n")
    assert read_leader_event(_claim(), built) == LeaderSucceeded()
    for status in ("success", "cached"):
        ended = BuildEnded(launch_id=LEADER, event_id=f"{LEADER}.build.b1.ended", timestamp=NOW, build_id="b1", image_name="img", status=status, seconds=1.0)
        assert read_leader_event(_claim(), ended) == LeaderSucceeded()
    ready = domain.build_only_ready(_command(LEADER, build_only=True), False, NOW)
    assert read_leader_event(_claim(), ready) == LeaderSucceeded()


def test_the_leader_failed_when_its_build_says_so() -> None:
    failed = domain.build_failed(_command(LEADER), "b1", "postBuild failed (exit status 3); see the build log.", NOW)
    assert read_leader_event(_claim(), failed) == LeaderFailed("Build failed: postBuild failed (exit status 3); see the build log.\n")


def test_relayed_events_belong_to_the_follower_and_are_named_by_build_and_position() -> None:
    line = BuildLogged(launch_id=LEADER, event_id=f"{LEADER}.build.b1.2", timestamp=NOW, message="line\n")
    later = NOW + timedelta(seconds=5)
    relayed = relayed_event(_command("follower-01"), _claim(), 17, line, later)
    assert isinstance(relayed, BuildLogged)
    assert (relayed.launch_id, relayed.event_id, relayed.message, relayed.timestamp) == ("follower-01", "follower-01.follow.b1.17", "line\n", later)
    # Redelivered, the follower publishes the same ids (JetStream keeps one copy).
    assert relayed_event(_command("follower-01"), _claim(), 17, line, NOW).event_id == relayed.event_id
    assert relayed_event(_command("follower-01"), _claim(build_id="b2"), 17, line, NOW).event_id != relayed.event_id
    with pytest.raises(ValueError):
        relayed_event(_command("follower-01"), _claim(), 18, ServerLaunching(launch_id=LEADER, event_id="x", timestamp=NOW), NOW)


def test_follower_facts_point_at_the_leaders_log() -> None:
    command = _command("follower-01")
    started = follow_started(command, _claim(), NOW)
    assert started.log_launch_id == LEADER and started.launch_id == "follower-01"
    assert started.build_id == "b1" and started.repo_url == command.repo.repo_url
    assert started.message == f"Build of {command.repo.image_name} already under way; showing its log\n"
    assert follow_ended(command, _claim(), True, 2.5, NOW).status == "cached"
    assert follow_ended(command, _claim(), False, 2.5, NOW).status == "failure"
    failed = follow_failed(command, _claim(), "Build failed: boom\n", NOW)
    assert (failed.launch_id, failed.message) == ("follower-01", "Build failed: boom\n")
    ids = [started.event_id, follow_ended(command, _claim(), True, 1, NOW).event_id, failed.event_id]
    assert len(set(ids)) == 3 and all(i.startswith("follower-01.follow.b1.") for i in ids)


def test_build_facts_name_the_attempt() -> None:
    command = _command()
    started = domain.build_started(command, "b1", NOW)
    assert (started.build_id, started.log_launch_id, started.image_name) == ("b1", command.launch_id, command.repo.image_name)
    assert started.event_id == domain.build_started(command, "b1", NOW + timedelta(seconds=1)).event_id
    assert started.event_id != domain.build_started(command, "b2", NOW).event_id
    ended = domain.build_ended(command, "b1", "failure", 12.34567, NOW, "postBuild failed")
    assert (ended.status, ended.seconds, ended.message) == ("failure", 12.346, "postBuild failed")
    assert ended.event_id != started.event_id


# -- the handlers, in this process, against the real nats-server -------------


class PrintingExecutor:
    """Builds by printing numbered lines with a pause between them, into a store shared by all its instances (a set of names).

    With `fail_with`, the build fails with that message after its lines; with
    `line_chars`, every line is padded to that many characters.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> "PrintingExecutor":
        return cls(set())

    def __init__(self, store: set[str], lines: int = 8, pause_seconds: float = 0.05, fail_with: str = "", line_chars: int = 0) -> None:
        self.store = store
        self.lines = lines
        self.line_chars = line_chars
        self.pause_seconds = pause_seconds
        self.fail_with = fail_with
        self.builds = 0

    async def build(self, repo: ResolvedRepo) -> AsyncIterator[BuildProgress]:
        if repo.image_name in self.store:
            yield BuildFinished(repo.image_name, was_cached=True)
            return
        self.builds += 1
        yield PhaseChanged("fetching", "Fetching...\n")
        for n in range(1, self.lines + 1):
            await asyncio.sleep(self.pause_seconds)
            yield LogLine(f"line {n}".ljust(self.line_chars, "x"))
        if self.fail_with:
            raise BuildError(self.fail_with)
        yield PhaseChanged("pushing", "Storing...\n")
        self.store.add(repo.image_name)
        yield BuildFinished(repo.image_name)


class Bus:
    """One private namespace on the session's nats-server: streams, the builds bucket, a publisher."""

    def __init__(self, nc: nats.NATS, subjects: Subjects, claims: ClaimBucket) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = subjects
        self.claims = claims
        self.publisher = EventPublisher(self.js, subjects)

    def handlers(self, executor: PrintingExecutor, instance: str, renew_seconds: float = 1.0, **limits: int) -> BuilderHandlers:
        return BuilderHandlers(
            self.publisher, self.subjects, executor, self.js, self.claims, instance, claim_renew_seconds=renew_seconds, claim_check_seconds=0.1,
            **limits,
        )

    async def events(self, launch_id: str) -> list[LoggedEvent]:
        return await read_launch(self.js, self.subjects, launch_id)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    """A connection to the session's nats-server with the event streams and the builds bucket of a fresh prefix."""
    nc = await nats.connect(nats_url)
    subjects = Subjects(f"t{uuid.uuid4().hex[:10]}")
    js = nc.jetstream()
    await ensure_streams(js, subjects, Settings())
    claims = await ClaimBucket.open(js, subjects)
    # Opening it again (a second replica starting) is harmless.
    await ClaimBucket.open(js, subjects)
    yield Bus(nc, subjects, claims)
    await nc.close()


def _of(events: list[LoggedEvent], kind: type) -> list:
    return [e.event for e in events if isinstance(e.event, kind)]


def _log(events: list[LoggedEvent]) -> list[tuple[str, str]]:
    return [(e.event.phase, e.event.message) for e in events if e.event.phase in ("fetching", "building", "pushing")]


async def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


async def test_a_launch_joining_a_build_gets_its_log_from_the_first_line_and_no_second_build(bus: Bus) -> None:
    store: set[str] = set()
    leader_exec, follower_exec = PrintingExecutor(store, lines=20), PrintingExecutor(store, lines=20)
    leader, follower = _command("leader-0001"), _command("follower-01")
    leading = asyncio.create_task(bus.handlers(leader_exec, "builder-a").handle(leader))

    async def leader_half_way() -> bool:
        return ("building", "line 10\n") in _log(await bus.events(leader.launch_id))

    await _wait_for(leader_half_way, 30, "the leader's build never got half way")
    # Join late, and twice (a redelivered command): one copy of each line either way.
    await asyncio.gather(bus.handlers(follower_exec, "builder-b").handle(follower), bus.handlers(follower_exec, "builder-c").handle(follower))
    await leading

    assert (leader_exec.builds, follower_exec.builds) == (1, 0)
    leader_events, follower_events = await bus.events(leader.launch_id), await bus.events(follower.launch_id)
    assert _log(follower_events) == _log(leader_events)
    assert [m for p, m in _log(follower_events) if p == "building"] == [f"line {n}\n" for n in range(1, 21)]
    assert len(_of(follower_events, ImageBuilt)) == 1
    assert _of(follower_events, ImageBuilt)[0].message == "Found built image, launching...\n"
    [started] = _of(follower_events, BuildStarted)
    assert started.log_launch_id == leader.launch_id and started.build_id == _of(leader_events, BuildStarted)[0].build_id
    assert [e.status for e in _of(follower_events, BuildEnded)] == ["cached"]
    assert [e.status for e in _of(leader_events, BuildEnded)] == ["success"]
    assert await bus.claims.read(claim_key(leader.repo.image_name)) is None


async def test_a_failed_build_fails_its_followers_with_the_same_message_and_no_rebuild(bus: Bus) -> None:
    store: set[str] = set()
    failing = PrintingExecutor(store, lines=12, fail_with="postBuild failed (exit status 3); see the build log.")
    never_used = PrintingExecutor(store)
    leader, follower = _command("leader-0002"), _command("follower-02")
    leading = asyncio.create_task(bus.handlers(failing, "builder-a").handle(leader))

    async def leader_under_way() -> bool:
        return ("building", "line 2\n") in _log(await bus.events(leader.launch_id))

    await _wait_for(leader_under_way, 30, "the leader's build never began")
    await bus.handlers(never_used, "builder-b").handle(follower)
    await leading

    assert (failing.builds, never_used.builds) == (1, 0)
    leader_events, follower_events = await bus.events(leader.launch_id), await bus.events(follower.launch_id)
    [leader_failed], [follower_failed] = _of(leader_events, LaunchFailed), _of(follower_events, LaunchFailed)
    assert follower_failed.message == leader_failed.message == "Build failed: postBuild failed (exit status 3); see the build log.\n"
    assert _log(follower_events) == _log(leader_events)
    [ended] = _of(leader_events, BuildEnded)
    assert (ended.status, ended.message) == ("failure", "postBuild failed (exit status 3); see the build log.")
    assert [e.status for e in _of(follower_events, BuildEnded)] == ["failure"]


async def test_a_stale_claim_of_a_dead_builder_is_taken_over(bus: Bus) -> None:
    command = _command("launch-0003")
    key = claim_key(command.repo.image_name)
    dead = BuildClaim(launch_id="crashed-0001", build_id="b0", builder="gone", renewed_at=datetime.now(timezone.utc) - timedelta(hours=1))
    assert await bus.claims.create(key, dead) is not None
    executor = PrintingExecutor(set(), lines=2)
    await bus.handlers(executor, "builder-a").handle(command)

    assert executor.builds == 1
    events = await bus.events(command.launch_id)
    [started] = _of(events, BuildStarted)
    assert started.log_launch_id == command.launch_id
    assert [e.status for e in _of(events, BuildEnded)] == ["success"]
    assert await bus.claims.read(key) is None


async def test_a_follower_takes_over_when_the_leader_stops_renewing_its_claim(bus: Bus) -> None:
    command = _command("launch-0004")
    key = claim_key(command.repo.image_name)
    # A leader that claimed the build and then died before printing anything.
    silent = BuildClaim(launch_id="crashed-0002", build_id="b0", builder="gone", renewed_at=datetime.now(timezone.utc))
    assert await bus.claims.create(key, silent) is not None
    executor = PrintingExecutor(set(), lines=2)
    began = time.monotonic()
    await bus.handlers(executor, "builder-a", renew_seconds=0.3).handle(command)

    assert time.monotonic() - began >= 0.8  # it followed until the claim went stale (3 missed renewals)
    assert executor.builds == 1
    events = await bus.events(command.launch_id)
    followed, own = _of(events, BuildStarted)
    assert followed.log_launch_id == "crashed-0002" and own.log_launch_id == command.launch_id
    assert len(_of(events, ImageBuilt)) == 1


async def test_a_leader_renews_its_claim_while_it_builds(bus: Bus) -> None:
    command = _command("launch-0005")
    key = claim_key(command.repo.image_name)
    building = asyncio.create_task(bus.handlers(PrintingExecutor(set(), lines=12, pause_seconds=0.1), "builder-a", renew_seconds=0.2).handle(command))

    async def claimed() -> bool:
        return await bus.claims.read(key) is not None

    await _wait_for(claimed, 10, "the build was never claimed")
    found = await bus.claims.read(key)
    assert found is not None
    first = found[0]
    await asyncio.sleep(0.5)
    found = await bus.claims.read(key)
    assert found is not None
    assert found[0].renewed_at > first.renewed_at
    assert (found[0].launch_id, found[0].builder) == (command.launch_id, "builder-a")
    await building
    assert await bus.claims.read(key) is None


# -- the whole pipeline, through the gateway ---------------------------------


def _counting_repo(git_server: GitServer, runs: "RunCounter", lines: int = 20, pause_seconds: float = 0.15) -> str:
    """A repository whose postBuild counts to `lines`, pausing between lines, and reports each run to `runs`."""
    script = (
        f"#!/bin/sh\npython3 -c \"import urllib.request; urllib.request.urlopen('{runs.url}')\"\n"
        f"for i in $(seq 1 {lines}); do echo \"counting $i\"; sleep {pause_seconds}; done\n"
    )
    return git_server.create(f"shared-{uuid.uuid4().hex[:8]}", {"binder/postBuild": script})


def _counted(result: Launch) -> list[str]:
    return [m for m in result.messages("building") if m.startswith("counting ")]


def _build_log(result: Launch) -> list[tuple[str, str]]:
    return [(e["phase"], e["message"]) for e in result.events if e["phase"] in ("fetching", "building", "pushing")]


async def _build_facts(pipeline: Pipeline, launch_ids: list[str]) -> list[BuildStarted]:
    nc = await nats.connect(pipeline.nats_url)
    try:
        js = nc.jetstream()
        subjects = Subjects(pipeline.prefix)
        facts: list[BuildStarted] = []
        for lid in launch_ids:
            facts += _of(await read_launch(js, subjects, lid), BuildStarted)
        return facts
    finally:
        await nc.close()


def _metric(metrics: str, name: str, labels: str) -> float:
    match = re.search(rf"^{name}\{{{labels}\}} ([0-9.e+]+)$", metrics, re.M)
    return float(match.group(1)) if match else 0.0


class RunCounter:
    """An HTTP endpoint on 127.0.0.1 that counts the requests it gets: a postBuild
    reports each of its runs there (its sandbox lets it write no file of ours)."""

    def __init__(self) -> None:
        self.count = 0
        counter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                counter.count += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/run"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def runs() -> Iterator[RunCounter]:
    counter = RunCounter()
    yield counter
    counter.close()


@pytest.mark.slow
async def test_two_clients_launching_one_repository_at_once_share_one_build(pipeline: Pipeline, git_server: GitServer, runs: RunCounter) -> None:
    url = _counting_repo(git_server, runs)
    first, second = await asyncio.gather(
        launch(pipeline.gateway_url, "git", spec_for(url, "main")), launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    )

    assert [first.last["phase"], second.last["phase"]] == ["ready", "ready"], (first.events[-3:], second.events[-3:])
    assert runs.count == 1  # postBuild ran once
    expected = [f"counting {n}\n" for n in range(1, 21)]
    assert _counted(first) == expected and _counted(second) == expected
    # The whole build log, fetching first: both clients saw the same, each line once.
    assert _build_log(first) == _build_log(second)
    assert _build_log(first)[0][0] == "fetching"
    for result in (first, second):
        assert len({e["event_id"] for e in result.events}) == len(result.events)
        assert result.phases.count("built") == 1
    launch_ids = [first.last["launch_id"], second.last["launch_id"]]
    facts = await _build_facts(pipeline, launch_ids)
    builds = [f for f in facts if f.log_launch_id == f.launch_id]
    followed = [f for f in facts if f.log_launch_id != f.launch_id]
    assert len(builds) == 1 and len(followed) == 1, facts
    assert followed[0].log_launch_id == builds[0].launch_id
    assert followed[0].build_id == builds[0].build_id


@pytest.mark.slow
async def test_a_launch_joining_late_on_another_builder_replica_gets_the_whole_log(make_pipeline, git_server: GitServer, runs: RunCounter) -> None:
    # One build at a time per builder: while the first builds, the second launch
    # can only go to the other replica, which follows over NATS.
    pipeline = make_pipeline(BINDERFLOW_BUILDER_MAX_CONCURRENT_BUILDS="1")
    pipeline.start("gateway")
    pipeline.start("resolver")
    pipeline.start("builder", 2)
    pipeline.start("launcher")
    pipeline.wait_healthy()
    deadline = time.monotonic() + 30
    while len(pipeline.instances("builder")) < 2:
        assert time.monotonic() < deadline, "two builders never reported"
        await asyncio.sleep(0.2)
    builders = pipeline.instances("builder")

    url = _counting_repo(git_server, runs, lines=20, pause_seconds=0.3)
    first = Launch()
    first_task = asyncio.create_task(launch(pipeline.gateway_url, "git", spec_for(url, "main"), result=first))
    deadline = time.monotonic() + 180
    while "counting 3\n" not in first.messages("building"):
        assert time.monotonic() < deadline and not first_task.done(), first.events[-3:]
        await asyncio.sleep(0.05)
    second = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    await first_task

    assert [first.last["phase"], second.last["phase"]] == ["ready", "ready"], (first.events[-3:], second.events[-3:])
    assert runs.count == 1
    expected = [f"counting {n}\n" for n in range(1, 21)]
    assert _counted(first) == expected and _counted(second) == expected
    assert _build_log(second) == _build_log(first)
    metrics = [pipeline.metrics(b["http_port"]) for b in builders]
    built = [_metric(m, "binderflow_builder_builds_total", 'status="success"') for m in metrics]
    follows = [_metric(m, "binderflow_builder_follows_total", 'outcome="success"') for m in metrics]
    assert sorted(built) == [0, 1] and sorted(follows) == [0, 1], (built, follows)
    assert built.index(1) != follows.index(1)  # the follower ran in the other process
    facts = await _build_facts(pipeline, [first.last["launch_id"], second.last["launch_id"]])
    assert sum(f.log_launch_id == f.launch_id for f in facts) == 1, facts


# -- bounded build logs ---------------------------------------------------------


async def test_a_build_printing_past_its_log_budget_goes_on_and_its_log_says_what_was_left_out(bus: Bus) -> None:
    """One build's output cannot flood the shared event log: past 5 lines it is read but not published."""
    command = _command("launch-flood1", image_name="git-127-0-0-1-flood-0123456789abcdef")
    executor = PrintingExecutor(set(), lines=40, pause_seconds=0)
    await bus.handlers(executor, "builder-a", max_log_lines=5).handle(command)
    lines = [m for p, m in _log(await bus.events(command.launch_id)) if p == "building"]
    assert lines[:5] == [f"line {n}\n" for n in range(1, 6)]
    assert "went over what its log shows (5 lines" in lines[5] and "the build goes on" in lines[5]
    assert lines[6] == "[binderflow] 35 more lines (276 bytes) of build output were not shown.\n"
    assert len(lines) == 7
    events = await bus.events(command.launch_id)
    assert [e.status for e in _of(events, BuildEnded)] == ["success"] and len(_of(events, ImageBuilt)) == 1


async def test_a_line_too_long_for_one_message_is_split_and_the_build_runs_once(bus: Bus) -> None:
    """A 300,000-character line once exceeded the NATS message limit and made the build run four times."""
    command = _command("launch-longline", image_name="git-127-0-0-1-longline-0123456789abcdef")
    executor = PrintingExecutor(set(), lines=1, pause_seconds=0, line_chars=300_000)
    await bus.handlers(executor, "builder-a").handle(command)
    pieces = [m for p, m in _log(await bus.events(command.launch_id)) if p == "building"]
    assert executor.builds == 1
    assert len(pieces) == 19 and all(len(p) <= MAX_LOG_LINE_CHARS + 1 for p in pieces)
    assert "".join(p.rstrip("\n") for p in pieces) == "line 1".ljust(300_000, "x")
