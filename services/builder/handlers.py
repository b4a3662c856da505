"""The builder's I/O edge: run the executor, publish its progress, queue the launch."""

from __future__ import annotations

import logging
import time

from schemas import BuildImage, Subjects
from services.runtime.bus import EventPublisher
from services.runtime.service import new_id, utcnow

from . import domain
from .executors.base import BuildError, BuildExecutor, BuildFinished, LogLine
from .metrics import BUILD_LOG_LINES, BUILD_SECONDS, BUILDS, BUILDS_IN_PROGRESS, BuildStatus

__all__ = ["BuilderHandlers"]

log = logging.getLogger(__name__)


class BuilderHandlers:
    def __init__(self, publisher: EventPublisher, subjects: Subjects, executor: BuildExecutor) -> None:
        self._publisher = publisher
        self._subjects = subjects
        self._executor = executor

    async def handle(self, command: BuildImage) -> None:
        build_id = new_id()[:10]
        started = time.monotonic()
        seq = 0
        finished: BuildFinished | None = None
        log.info("launch %s: building %s", command.launch_id, command.repo.image_name)
        BUILDS_IN_PROGRESS.inc()
        try:
            async for progress in self._executor.build(command.repo):
                seq += 1
                await self._publisher.event(domain.event_for_progress(command, build_id, seq, progress, utcnow()))
                if isinstance(progress, LogLine):
                    BUILD_LOG_LINES.inc()
                elif isinstance(progress, BuildFinished):
                    finished = progress
        except BuildError as exc:
            BUILDS.labels(BuildStatus.FAILURE.value).inc()
            BUILD_SECONDS.labels(BuildStatus.FAILURE.value).observe(time.monotonic() - started)
            log.info("launch %s: build of %s failed: %s", command.launch_id, command.repo.image_name, exc)
            await self._publisher.event(domain.build_failed(command, build_id, str(exc), utcnow()))
            return
        finally:
            BUILDS_IN_PROGRESS.dec()
        if finished is None:
            raise RuntimeError("the executor stopped without finishing the build")
        status = BuildStatus.CACHED if finished.was_cached else BuildStatus.SUCCESS
        BUILDS.labels(status.value).inc()
        BUILD_SECONDS.labels(status.value).observe(time.monotonic() - started)
        if command.request.build_only:
            # The build-only `ready` event was the last progress event: no server.
            return
        await self._publisher.command(self._subjects.start_commands, domain.start_after_build(command, utcnow()))

    async def give_up(self, command: BuildImage, error: BaseException) -> None:
        await self._publisher.event(domain.build_failed(command, "final", f"internal error in the builder: {error}", utcnow()))
