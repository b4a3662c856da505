"""The resolver's I/O edge: resolve a ref, check the store, publish the decision."""

from __future__ import annotations

import logging
import time
from typing import Mapping, Sequence

from schemas import ResolveRef
from services.runtime.bus import EventPublisher
from services.runtime.environments import EnvironmentStore
from services.runtime.service import utcnow

from . import domain
from .metrics import RESOLUTIONS, RESOLVE_SECONDS, ResolveOutcome
from .providers import ProviderError, RepoProvider

__all__ = ["ResolverHandlers"]

log = logging.getLogger(__name__)


class ResolverHandlers:
    def __init__(
        self,
        publisher: EventPublisher,
        providers: dict[str, RepoProvider],
        store: EnvironmentStore,
        image_prefix: str = "",
        banned_specs: Mapping[str, Sequence[str]] | None = None,
        high_quota_specs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self._publisher = publisher
        self._providers = providers
        self._store = store
        self._image_prefix = image_prefix
        # Provider prefix -> regular expressions (settings.providers.banned_specs / high_quota_specs).
        self._banned_specs = dict(banned_specs or {})
        self._high_quota_specs = dict(high_quota_specs or {})
        domain.check_spec_patterns(self._banned_specs, "providers.banned_specs")
        domain.check_spec_patterns(self._high_quota_specs, "providers.high_quota_specs")

    async def handle(self, command: ResolveRef) -> None:
        request = command.request
        provider = self._providers.get(request.provider)
        if provider is None:
            known = ", ".join(sorted(self._providers))
            RESOLUTIONS.labels(request.provider[:32], ResolveOutcome.UNKNOWN_PROVIDER.value).inc()
            await self._publisher.event(
                domain.failure(command, f"No provider found for prefix {request.provider!r} (known providers: {known})", utcnow())
            )
            return
        if domain.is_banned(request.spec, self._banned_specs.get(request.provider, ())):
            RESOLUTIONS.labels(provider.name, ResolveOutcome.BANNED.value).inc()
            log.info("launch %s: %s/%s is banned", command.launch_id, request.provider, request.spec)
            await self._publisher.event(domain.failure(command, domain.banned_message(request.spec), utcnow()))
            return
        high_quota = domain.is_high_quota(request.spec, self._high_quota_specs.get(request.provider, ()))
        started = time.monotonic()
        try:
            source = await provider.resolve(request.spec)
        except ProviderError as exc:
            RESOLUTIONS.labels(provider.name, ResolveOutcome.FAILED.value).inc()
            log.info("launch %s: %s", command.launch_id, exc)
            await self._publisher.event(domain.failure(command, str(exc), utcnow()))
            return
        finally:
            RESOLVE_SECONDS.labels(provider.name).observe(time.monotonic() - started)
        repo = domain.pin(request.provider, source.request_spec or request.spec, source, self._image_prefix)
        if source.notice:
            await self._publisher.event(domain.notice(command, source.notice, utcnow()))
        is_built = await self._store.exists(repo.image_name)
        decision = domain.decide(command, repo, is_built, utcnow())
        RESOLUTIONS.labels(provider.name, (ResolveOutcome.BUILT if is_built else ResolveOutcome.BUILD).value).inc()
        log.info(
            "launch %s: %s at %s -> %s (%s%s)",
            command.launch_id,
            repo.repo_url,
            repo.resolved_ref[:12],
            repo.image_name,
            "built" if is_built else "build",
            ", high quota" if high_quota else "",
        )
        await self._publisher.event(domain.resolved_fact(command, repo, is_built, utcnow()))
        for event in decision.events:
            await self._publisher.event(event)
        if decision.build is not None:
            await self._publisher.command(decision.build)
        if decision.start is not None:
            await self._publisher.command(decision.start)

    async def give_up(self, command: ResolveRef, error: BaseException) -> None:
        await self._publisher.event(
            domain.failure(command, f"Internal error while resolving {command.request.provider}/{command.request.spec}: {error}", utcnow())
        )
