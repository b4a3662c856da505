"""Replicas of a service share one durable consumer: each command is handled once."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest

from .harness import GitServer, launch, spec_for

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow


def _counter(metrics: str, name: str, labels: str) -> float:
    match = re.search(rf"^{name}\{{{labels}\}} ([0-9.e+]+)$", metrics, re.M)
    return float(match.group(1)) if match else 0.0


def _wait_for_instances(pipeline, service: str, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        instances = pipeline.instances(service)
        if len(instances) >= count:
            return instances
        time.sleep(0.2)
    raise TimeoutError(f"{count} {service} instances not seen")


async def test_two_resolvers_and_two_builders_share_the_work(make_pipeline, git_server: GitServer) -> None:
    pipeline = make_pipeline(BINDERFLOW_BUILDER_MAX_CONCURRENT_BUILDS="1")
    pipeline.start("gateway")
    pipeline.start("resolver", 2)
    pipeline.start("builder", 2)
    pipeline.start("launcher")
    pipeline.wait_healthy()
    resolvers = _wait_for_instances(pipeline, "resolver", 2)
    builders = _wait_for_instances(pipeline, "builder", 2)

    # Builds that do real work (install JupyterLab, run postBuild) and then fail
    # fast, so no server start is needed to see who built what.
    launches = 6
    urls = [
        git_server.create(f"share-{uuid.uuid4().hex[:8]}", {"binder/postBuild": "#!/bin/sh\nsleep 1\necho giving up\nexit 3\n"})
        for _ in range(launches)
    ]
    results = await asyncio.gather(*(launch(pipeline.gateway_url, "git", spec_for(url, "main")) for url in urls))

    for result in results:
        assert result.phases.count("waiting") == 1
        assert result.phases.count("fetching") == 1
        assert result.phases.count("failed") == 1
        assert "binder/postBuild failed (exit status 3)" in result.last["message"]
        assert len({e["event_id"] for e in result.events}) == len(result.events)

    built_by = [_counter(pipeline.metrics(b["http_port"]), "binderflow_builder_builds_total", 'status="failure"') for b in builders]
    resolved_by = [
        _counter(pipeline.metrics(r["http_port"]), "binderflow_resolver_resolutions_total", 'outcome="build",provider="git"') for r in resolvers
    ]
    assert sum(built_by) == launches, built_by
    assert all(n > 0 for n in built_by), built_by
    assert sum(resolved_by) == launches, resolved_by
