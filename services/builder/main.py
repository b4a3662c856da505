"""Entry point of the builder service."""

from __future__ import annotations

from schemas import BuildImage
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings
from services.runtime.worker import Worker

from .executors import make_executor
from .handlers import BuilderHandlers, ClaimBucket
from .metrics import preset


async def serve(settings: Settings) -> None:
    async with ServiceRuntime("builder", settings, settings.builder.http_port) as rt:
        preset()
        claims = await ClaimBucket.open(rt.js, rt.subjects, settings.events.replicas)
        executor = make_executor(settings)
        handlers = BuilderHandlers(
            rt.publisher, rt.subjects, executor, rt.js, claims, rt.instance,
            max_log_lines=settings.builder.max_log_lines, max_log_bytes=settings.builder.max_log_bytes,
        )
        worker = Worker(rt.js, rt.subjects, BuildImage, handlers.handle, handlers.give_up, settings.builder.max_concurrent_builds, settings.ack_wait_seconds)
        await worker.run(rt.stopping)
