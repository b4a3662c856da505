"""Session fixtures: one real nats-server, git daemon and package index for the whole run."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from services.runtime.embedded import start_nats_server

from .harness import WHEELHOUSE, GitServer, Pipeline, free_port, stop_process, wait_http


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real nats-server with JetStream on a random port and a temporary store."""
    proc, url, _ = start_nats_server(tmp_path_factory.mktemp("nats"))
    yield url
    stop_process(proc)


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """Real Git repositories served with `git daemon` on 127.0.0.1."""
    server = GitServer(tmp_path_factory.mktemp("repos"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def package_index() -> Iterator[str]:
    """A package index (flat find-links page) on 127.0.0.1 serving the wheels `make wheelhouse` fetched."""
    if not (WHEELHOUSE / ".complete").exists():
        pytest.fail("the test wheelhouse is missing: run `make wheelhouse` (make test does it)")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(WHEELHOUSE)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    wait_http(url)
    yield url
    stop_process(proc)


@pytest.fixture(scope="session")
def shared_uv_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uv cache for every test pipeline, as builders on one host share one."""
    return tmp_path_factory.mktemp("uv-cache")


def _new_pipeline(nats_url: str, package_index: str, tmp: Path, uv_cache: Path, **env: str) -> Pipeline:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    data = tmp / "data"
    logs = tmp / "logs"
    data.mkdir(parents=True)
    logs.mkdir(parents=True)
    return Pipeline(nats_url, prefix, data, package_index, logs, extra_env=env, uv_cache=uv_cache)


@pytest.fixture(scope="session")
def pipeline(nats_url: str, package_index: str, shared_uv_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """One gateway, resolver, builder and launcher, each its own process, in a private namespace."""
    p = _new_pipeline(nats_url, package_index, tmp_path_factory.mktemp("pipeline"), shared_uv_cache).start_all()
    try:
        p.wait_healthy()
        yield p
    finally:
        p.stop()
        print(p.logs()[-20000:])


@pytest.fixture
def make_pipeline(nats_url: str, package_index: str, shared_uv_cache: Path, tmp_path: Path) -> Iterator["callable"]:  # type: ignore[valid-type]
    """Factory for a pipeline a test arranges itself (replicas, kills); stopped afterwards."""
    made: list[Pipeline] = []

    def make(**env: str) -> Pipeline:
        p = _new_pipeline(nats_url, package_index, tmp_path / f"p{len(made)}", shared_uv_cache, **env)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()
        print(p.logs()[-20000:])
