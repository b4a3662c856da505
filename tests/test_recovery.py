"""Crashes and limits: a killed builder's work is taken over; idle and old servers are stopped."""

from __future__ import annotations

import asyncio
import signal
import time
import urllib.request
import uuid

import pytest

from .harness import GitServer, Launch, launch, spec_for

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow


async def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(what)


async def test_killed_builder_leaves_nothing_built_and_its_build_is_taken_over(make_pipeline, git_server: GitServer) -> None:
    pipeline = make_pipeline(BINDERFLOW_ACK_WAIT_SECONDS="3")
    pipeline.start_all()
    pipeline.wait_healthy()
    url = git_server.create(f"crash-{uuid.uuid4().hex[:8]}", {"binder/postBuild": "#!/bin/sh\necho postBuild started\nsleep 3\necho postBuild finished\n"})
    result = Launch()
    task = asyncio.create_task(launch(pipeline.gateway_url, "git", spec_for(url, "main"), result=result))
    await _wait_for(lambda: "postBuild started\n" in result.messages("building"), 120, "the build never reached postBuild")

    builder = pipeline.procs["builder"][0]
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    assert not result.messages("pushing")  # it never got as far as storing the environment
    environments = pipeline.data_dir / "environments"
    assert not list(environments.glob("*/binderflow-environment.json"))

    pipeline.start("builder")
    await asyncio.wait_for(task, 180)
    assert result.last["phase"] == "ready", result.events[-5:]
    assert result.messages("building").count("postBuild started\n") == 2
    assert result.messages("building").count("postBuild finished\n") == 1
    assert len(list(environments.glob("*/binderflow-environment.json"))) == 1


@pytest.mark.parametrize(
    "limits",
    [
        {"BINDERFLOW_LAUNCHER_IDLE_TIMEOUT_SECONDS": "2", "BINDERFLOW_LAUNCHER_MAX_AGE_SECONDS": "0"},
        {"BINDERFLOW_LAUNCHER_IDLE_TIMEOUT_SECONDS": "0", "BINDERFLOW_LAUNCHER_MAX_AGE_SECONDS": "3"},
    ],
    ids=["idle", "max-age"],
)
async def test_servers_are_stopped_when_idle_or_too_old(make_pipeline, git_server: GitServer, limits: dict[str, str]) -> None:
    pipeline = make_pipeline(BINDERFLOW_LAUNCHER_CULL_INTERVAL_SECONDS="1", **limits)
    pipeline.start_all()
    pipeline.wait_healthy()
    url = git_server.create(f"cull-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n"})
    result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert result.last["phase"] == "ready"
    server_dir = pipeline.data_dir / "servers" / result.last["launch_id"]
    assert server_dir.is_dir()

    def is_down() -> bool:
        try:
            urllib.request.urlopen(result.last["url"] + "api/status", timeout=1)
        except OSError:
            return True
        return False

    await _wait_for(lambda: is_down() and not server_dir.exists(), 30, "the server was not stopped")
