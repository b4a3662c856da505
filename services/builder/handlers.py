"""The builder's I/O edge: claim or follow a build, run the executor, publish its progress, queue the launch.

The rules (who leads, who follows, what a follower makes of the leader's log)
are pure functions in `sharing.py` and `domain.py`; this module does the NATS
work around them: the builds bucket, the leader's log, publishing.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from nats.js import JetStreamContext
from nats.js import api as jsapi
from nats.js.errors import APIError, BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from schemas import BuildImage, BuildStatus, Subjects
from schemas.identity import GIVE_UP_BUILD_ID
from services.runtime import telemetry
from services.runtime.bus import EventPublisher
from services.runtime.eventlog import follow_launch
from services.runtime.service import new_id, utcnow

from . import domain
from .executors.base import BuildError, BuildExecutor, BuildFinished, BuildProgress, LogLine, PhaseChanged
from .metrics import (
    BUILD_LOG_LINES,
    BUILD_SECONDS,
    BUILDS,
    BUILDS_IN_PROGRESS,
    CLAIMS_TAKEN_OVER,
    FOLLOWS,
    FOLLOWS_IN_PROGRESS,
    FollowOutcome,
)
from .sharing import (
    CLAIM_RENEW_SECONDS,
    STALE_AFTER_RENEWALS,
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
    judge_followed_claim,
    read_leader_event,
    relayed_event,
)

__all__ = ["BuilderHandlers", "ClaimBucket"]

log = logging.getLogger(__name__)

# Claims are renewed every few seconds, so anything older than this is long dead;
# the bucket's age limit only keeps crashed builders' claims from piling up.
_CLAIM_MAX_AGE_SECONDS = 24 * 3600.0
# Claim, lose the race, follow, see the leader go away, claim again...: a command
# that goes round this often without an answer fails its try (and is retried).
_CLAIM_ROUNDS = 20
# Once the followed claim is gone, the leader's last events are already stored
# (it releases the claim after publishing them): this is ample to read them.
_DRAIN_SECONDS = 2.0


class ClaimBucket:
    """The builds bucket: environment key -> BuildClaim. Writes are atomic or revision-checked."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, subjects: Subjects, replicas: int = 1) -> "ClaimBucket":
        """The bucket, created if missing: any builder replica may start first."""
        config = jsapi.KeyValueConfig(
            bucket=subjects.builds_bucket,
            description="binderflow builds under way: environment -> the build making it",
            history=1,
            ttl=_CLAIM_MAX_AGE_SECONDS,
            storage=jsapi.StorageType.FILE,
            replicas=replicas,
        )
        try:
            kv = await js.create_key_value(config)
        except BadRequestError as exc:
            # It exists with other settings (an older version made it): use it as it is.
            log.debug("builds bucket exists: %s", exc)
            kv = await js.key_value(subjects.builds_bucket)
        return cls(kv)

    async def read(self, key: str) -> tuple[BuildClaim, int] | None:
        """The claim on `key` and its revision, or None when there is none."""
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None
        assert entry.revision is not None  # a stored entry always has one
        return decode_claim(entry.value or b""), entry.revision

    async def create(self, key: str, claim: BuildClaim) -> int | None:
        """Claim `key` if nobody holds it; the new revision, or None when someone does."""
        try:
            return await self._kv.create(key, encode_claim(claim))
        except KeyWrongLastSequenceError:
            return None

    async def replace(self, key: str, claim: BuildClaim, revision: int) -> int | None:
        """Replace the claim at `revision`; the new revision, or None when it changed meanwhile."""
        try:
            return await self._kv.update(key, encode_claim(claim), last=revision)
        except KeyWrongLastSequenceError:
            return None

    async def release(self, key: str, claim: BuildClaim, revision: int) -> None:
        """Delete `claim` from `key`, unless someone else holds the key by now."""
        try:
            await self._kv.delete(key, last=revision)
            return
        except APIError as exc:
            log.debug("releasing %s at revision %d: %s", key, revision, exc)
        # The revision we knew is out of date (a renewal raced the release); delete
        # only if the claim is still ours, else it belongs to whoever took it over.
        found = await self.read(key)
        if found is not None and (found[0].launch_id, found[0].build_id) == (claim.launch_id, claim.build_id):
            try:
                await self._kv.delete(key, last=found[1])
            except APIError as exc:
                log.debug("releasing %s at revision %d: %s", key, found[1], exc)


class _Lease:
    """A claim this builder holds: renewed in the background, released on exit."""

    def __init__(self, bucket: ClaimBucket, key: str, claim: BuildClaim, revision: int, renew_seconds: float) -> None:
        self._bucket = bucket
        self._key = key
        self._claim = claim
        self._revision = revision
        self._renew_seconds = renew_seconds
        self._task: asyncio.Task[None] | None = None

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._renew_seconds)
            claim = msgspec.structs.replace(self._claim, renewed_at=utcnow())
            try:
                revision = await self._bucket.replace(self._key, claim, self._revision)
            except Exception as exc:  # NATS trouble: try again next time, before the claim goes stale
                log.warning("renewing the claim on %s failed: %s", self._key, exc)
                continue
            if revision is None:
                # Taken over: we were silent too long. Our build goes on (the environment
                # store has its own lock); the new holder's followers follow that one.
                log.warning("launch %s lost its claim on %s to another builder", self._claim.launch_id, self._key)
                return
            self._claim, self._revision = claim, revision

    async def __aenter__(self) -> "_Lease":
        self._task = asyncio.create_task(self._renew())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.wait([self._task])
        try:
            await self._bucket.release(self._key, self._claim, self._revision)
        except Exception as exc:  # it goes stale and is taken over instead
            log.warning("releasing the claim on %s failed: %s", self._key, exc)


class BuilderHandlers:
    """Handles BuildImage: lead the environment's build, or follow the one under way."""

    def __init__(
        self,
        publisher: EventPublisher,
        subjects: Subjects,
        executor: BuildExecutor,
        js: JetStreamContext,
        claims: ClaimBucket,
        instance: str,
        *,
        claim_renew_seconds: float = CLAIM_RENEW_SECONDS,
        claim_check_seconds: float = 1.0,
        max_log_lines: int = 100_000,
        max_log_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._publisher = publisher
        self._subjects = subjects
        self._executor = executor
        self._js = js
        self._claims = claims
        self._instance = instance
        self._claim_renew_seconds = claim_renew_seconds
        self._stale_after_seconds = STALE_AFTER_RENEWALS * claim_renew_seconds
        # How often a follower looks at the followed claim (is its builder alive?).
        self._claim_check_seconds = claim_check_seconds
        self._max_log_lines = max_log_lines
        self._max_log_bytes = max_log_bytes

    async def handle(self, command: BuildImage) -> None:
        key = claim_key(command.repo.image_name)
        for _ in range(_CLAIM_ROUNDS):
            found = await self._claims.read(key)
            now = utcnow()
            decision = decide_claim(found[0] if found else None, command.launch_id, now, self._stale_after_seconds)
            if decision is ClaimDecision.FOLLOW:
                assert found is not None
                if await self._follow(command, key, found[0]):
                    return
                continue
            build_id = new_id()[:10]
            claim = BuildClaim(launch_id=command.launch_id, build_id=build_id, builder=self._instance, renewed_at=now)
            if found is None:
                revision = await self._claims.create(key, claim)
            else:
                revision = await self._claims.replace(key, claim, found[1])
                if revision is not None:
                    CLAIMS_TAKEN_OVER.inc()
                    log.info("launch %s: took over the build of %s from launch %s", command.launch_id, command.repo.image_name, found[0].launch_id)
            if revision is None:
                continue  # another builder claimed it first: look again
            async with _Lease(self._claims, key, claim, revision, self._claim_renew_seconds):
                await self._build(command, build_id)
            return
        raise RuntimeError(f"could neither claim nor follow the build of {command.repo.image_name}")

    async def _build(self, command: BuildImage, build_id: str, *, quiet_if_cached: bool = False) -> None:
        """Run the executor and publish its progress, the build's facts, then queue the launch.

        With `quiet_if_cached` (after following another launch's build, whose facts
        cover it) an environment found built publishes no BuildStarted/BuildEnded.
        """
        started = time.monotonic()
        announced = False

        async def announce() -> None:
            nonlocal announced
            if not announced:
                announced = True
                await self._publisher.build_started(domain.build_started(command, build_id, utcnow()))

        if not quiet_if_cached:
            await announce()
        seq = 0
        finished: BuildFinished | None = None
        budget = domain.LogBudget(self._max_log_lines, self._max_log_bytes)

        async def publish(progress: BuildProgress) -> None:
            nonlocal seq
            seq += 1
            await self._publisher.event(domain.event_for_progress(command, build_id, seq, progress, utcnow()))

        async def publish_line(text: str) -> None:
            for piece in domain.split_log_text(text):
                was_over = budget.is_over
                if budget.admit(piece):
                    await publish(LogLine(piece))
                    BUILD_LOG_LINES.inc()
                elif not was_over:
                    await publish(LogLine(budget.notice()))

        log.info("launch %s: building %s", command.launch_id, command.repo.image_name)
        BUILDS_IN_PROGRESS.inc()
        phases = telemetry.PhaseSpans("builder", command.launch_id)
        try:
            async for progress in self._executor.build(command.repo):
                if not (isinstance(progress, BuildFinished) and progress.was_cached):
                    await announce()
                if isinstance(progress, LogLine):
                    await publish_line(progress.text)
                    continue
                if budget.is_over and isinstance(progress, BuildFinished):
                    await publish(LogLine(budget.summary()))
                await publish(progress)
                if isinstance(progress, PhaseChanged):
                    phases.enter(progress.phase)
                elif isinstance(progress, BuildFinished):
                    phases.close()
                    finished = progress
        except BuildError as exc:
            phases.fail(exc)
            log.info("launch %s: build of %s failed: %s", command.launch_id, command.repo.image_name, exc)
            await announce()
            if budget.is_over:
                await publish(LogLine(budget.summary()))
            await self._end(command, build_id, "failure", started, str(exc))
            await self._publisher.event(domain.build_failed(command, build_id, str(exc), utcnow()))
            return
        except Exception as exc:
            phases.fail(exc)
            # The worker retries the command; this attempt is over all the same.
            if announced:
                await self._end(command, build_id, "failure", started, f"internal error in the builder: {exc}")
            raise
        finally:
            phases.close()
            BUILDS_IN_PROGRESS.dec()
        if finished is None:
            if announced:
                await self._end(command, build_id, "failure", started, "the executor stopped without finishing the build")
            raise RuntimeError("the executor stopped without finishing the build")
        if announced:
            await self._end(command, build_id, "cached" if finished.was_cached else "success", started)
        if command.request.build_only:
            # The build-only `ready` event was the last progress event: no server.
            return
        await self._publisher.command(domain.start_after_build(command, utcnow()))

    async def _end(self, command: BuildImage, build_id: str, status: BuildStatus, started: float, reason: str = "") -> None:
        seconds = time.monotonic() - started
        BUILDS.labels(status).inc()
        BUILD_SECONDS.labels(status).observe(seconds)
        await self._publisher.event(domain.build_ended(command, build_id, status, seconds, utcnow(), reason))

    async def _follow(self, command: BuildImage, key: str, followed: BuildClaim) -> bool:
        """Show the followed build's log on this launch and act on how it ends.

        True when the launch is dealt with; False when the leader went away
        without an answer and the environment must be claimed again.
        """
        log.info("launch %s: following launch %s's build of %s", command.launch_id, followed.launch_id, command.repo.image_name)
        started = time.monotonic()
        await self._publisher.build_started(follow_started(command, followed, utcnow()))
        FOLLOWS_IN_PROGRESS.inc()
        try:
            news = await self._watch_leader(command, key, followed)
        finally:
            FOLLOWS_IN_PROGRESS.dec()
        seconds = time.monotonic() - started
        match news:
            case LeaderSucceeded():
                FOLLOWS.labels(FollowOutcome.SUCCESS.value).inc()
                await self._publisher.event(follow_ended(command, followed, True, seconds, utcnow()))
                # Launch as a cached build does; should this host lack the environment
                # (another host's builder built it), this builds it here.
                await self._build(command, new_id()[:10], quiet_if_cached=True)
                return True
            case LeaderFailed(message=message):
                FOLLOWS.labels(FollowOutcome.FAILURE.value).inc()
                await self._publisher.event(follow_ended(command, followed, False, seconds, utcnow()))
                await self._publisher.event(follow_failed(command, followed, message, utcnow()))
                return True
        FOLLOWS.labels(FollowOutcome.ABANDONED.value).inc()
        log.info("launch %s: launch %s's build of %s went away; claiming it", command.launch_id, followed.launch_id, command.repo.image_name)
        return False

    async def _watch_leader(self, command: BuildImage, key: str, followed: BuildClaim) -> LeaderSucceeded | LeaderFailed | None:
        """Relay the followed build's log from its first line until it ends; None if its claim went away unanswered."""
        claim_gone = False
        next_check = time.monotonic() + self._claim_check_seconds
        async with follow_launch(self._js, self._subjects, followed.launch_id) as leader_log:
            while True:
                wait = _DRAIN_SECONDS if claim_gone else max(0.01, next_check - time.monotonic())
                record = await leader_log.next(wait)
                if record is not None:
                    logged = record.logged()
                    news = read_leader_event(followed, logged.event) if logged is not None else None
                    if isinstance(news, Relay):
                        await self._publisher.event(relayed_event(command, followed, record.seq, news.event, utcnow()))
                    elif news is not None:
                        return news
                    if claim_gone and leader_log.caught_up:
                        return None  # read all the leader stored, and no end among it
                elif claim_gone:
                    return None
                if claim_gone or time.monotonic() < next_check:
                    continue
                found = await self._claims.read(key)
                state = judge_followed_claim(followed, found[0] if found else None, utcnow(), self._stale_after_seconds)
                if state is ClaimState.GONE:
                    # Released: its end, if it had one, is in the log already; read to it.
                    claim_gone = True
                elif state is not ClaimState.HELD:
                    return None  # taken over, or its builder died: decide afresh
                next_check = time.monotonic() + self._claim_check_seconds

    async def give_up(self, command: BuildImage, error: BaseException) -> None:
        await self._publisher.event(domain.build_failed(command, GIVE_UP_BUILD_ID, f"internal error in the builder: {error}", utcnow()))
