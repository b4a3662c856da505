"""Entry point of the resolver service."""

from __future__ import annotations

from schemas import ResolveRef
from services.runtime.environments import LocalEnvironmentStore
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings
from services.runtime.worker import Worker

from .handlers import ResolverHandlers
from .providers import make_providers


async def serve(settings: Settings) -> None:
    async with ServiceRuntime("resolver", settings, settings.resolver.http_port) as rt:
        providers = make_providers(settings)
        handlers = ResolverHandlers(
            rt.publisher,
            providers,
            LocalEnvironmentStore(settings.environments_path),
            settings.resolver.image_prefix,
            banned_specs=settings.providers.banned_specs,
            high_quota_specs=settings.providers.high_quota_specs,
        )
        worker = Worker(rt.js, rt.subjects, ResolveRef, handlers.handle, handlers.give_up, settings.resolver.max_concurrent, settings.ack_wait_seconds)
        try:
            await worker.run(rt.stopping)
        finally:
            # Providers with an HTTP session (gh, gist, gl, ...) close it.
            for provider in providers.values():
                await provider.aclose()
