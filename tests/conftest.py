"""Session fixtures: one real nats-server, git daemon and package index for the whole run.

Also the test pyramid's guard: a test that starts processes (binderflow's
services, JupyterLab, Chromium, node, nats-servers, the CLI) is marked `slow`,
so `make test-fast` (-m "not slow") stays a quick edit loop. A test that uses a
fixture starting them, or starts one itself, without the mark fails and says so.
Short `git` commands (making test repositories) do not count.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

# Fixtures whose use means service processes (and JupyterLab servers) run for the test.
PROCESS_FIXTURES = frozenset({"pipeline", "make_pipeline", "package_index"})
# Commands a fast test may run: quick, short-lived (making git repositories).
QUICK_COMMANDS = frozenset({"git"})

_started_by_fast_test: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "subprocess.Popen" and _started_by_fast_test is not None:
        argv = args[1]
        first = argv[0] if isinstance(argv, (list, tuple)) and argv else argv
        name = os.path.basename(os.fsdecode(first)) if isinstance(first, (str, bytes, os.PathLike)) else str(first)
        if name not in QUICK_COMMANDS:
            _started_by_fast_test.append(name)


sys.addaudithook(_audit)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        f"{item.nodeid} uses {', '.join(sorted(used))}"
        for item in items
        if (used := PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))) and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError("these tests start processes; mark them @pytest.mark.slow:\n  " + "\n  ".join(unmarked))


def _watch_processes(node: pytest.Item | Any, what: str) -> Iterator[None]:
    """Fail `node` if it is a fast test and processes start while it does `what`."""
    global _started_by_fast_test
    watching = isinstance(node, pytest.Item) and node.get_closest_marker("slow") is None
    _started_by_fast_test = [] if watching else None
    try:
        result = yield
    finally:
        started, _started_by_fast_test = _started_by_fast_test, None
    if started:
        pytest.fail(f"{node.nodeid} started processes ({', '.join(sorted(set(started)))}) {what}: mark it @pytest.mark.slow", pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _watch_processes(item, "in its body"))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Iterator[None]:
    # Session fixtures (one nats-server, one git daemon for the whole run) are shared
    # infrastructure; a fixture of the test's own that starts processes is the test's.
    node = request.node if fixturedef.scope == "function" else None
    return (yield from _watch_processes(node, f"in its fixture {fixturedef.argname}"))

from services.runtime.embedded import start_nats_server

from .harness import WHEELHOUSE, GitServer, Pipeline, free_port, stop_process, wait_http


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real nats-server with JetStream on a random port and a temporary store.

    Every test namespace's streams reserve their `max_bytes` (1.25 GiB with the
    defaults) against JetStream's storage limit, three quarters of the free disk
    unless told otherwise: a few dozen namespaces would use it up, though they
    write a few MiB. The limit is raised to what the run could reserve.
    """
    proc, url, _ = start_nats_server(tmp_path_factory.mktemp("nats"), max_file_store_bytes=2**42)
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
