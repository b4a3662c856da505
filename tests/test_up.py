"""`binderflow up` and `binderflow launch`, run as a person would run them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from .harness import GitServer, Pipeline, free_port, wait_http

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow

BINDERFLOW = str(Path(sys.executable).parent / "binderflow")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(what)


def _launch_cli(gateway: str, url: str, ref: str = "main", timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BINDERFLOW, "launch", url, "--ref", ref, "--gateway", gateway], capture_output=True, text=True, timeout=timeout)


def test_launch_command_prints_url_and_token_and_fails_nonzero(pipeline: Pipeline, git_server: GitServer) -> None:
    url = git_server.create(f"cli-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n"})
    ok = _launch_cli(pipeline.gateway_url, url)
    assert ok.returncode == 0, ok.stderr
    assert "Server ready: http://127.0.0.1:" in ok.stdout
    assert "Token:" in ok.stdout
    assert "building" in ok.stdout  # log lines are shown while it builds

    bad = _launch_cli(pipeline.gateway_url, url, ref="no-such-ref", timeout=60)
    assert bad.returncode == 1
    assert "no-such-ref" in bad.stderr


def test_up_restarts_a_killed_service_and_stops_everything_cleanly(tmp_path: Path, git_server: GitServer, package_index: str) -> None:
    port = free_port()
    data = tmp_path / "data"
    config = tmp_path / "binderflow.toml"
    config.write_text(
        f"""
data_dir = "{data}"
heartbeat_seconds = 1
[gateway]
port = {port}
service_stale_after_seconds = 5
[resolver]
http_port = 0
git_allowed_hosts = ["127.0.0.1"]
[builder]
http_port = 0
find_links = ["{package_index}"]
no_index = true
[launcher]
http_port = 0
"""
    )
    log_path = tmp_path / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINDERFLOW_")}
    with open(log_path, "wb") as log:
        up = subprocess.Popen([BINDERFLOW, "up", "--config", str(config)], stdout=log, stderr=log, env=env)
    gateway = f"http://127.0.0.1:{port}"
    try:
        wait_http(gateway + "/health", 60)
        status_file = data / "up.json"
        status = json.loads(status_file.read_text())
        old = status["services"]["resolver"]["pid"]
        os.kill(old, signal.SIGKILL)

        def restarted() -> dict | None:
            s = json.loads(status_file.read_text())
            r = s["services"]["resolver"]
            return s if r["pid"] != old and r["restarts"] == 1 else None

        status = _wait(restarted, 30, "resolver was not restarted")
        wait_http(gateway + "/health", 30)

        url = git_server.create(f"up-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n"})
        launched = _launch_cli(gateway, url)
        assert launched.returncode == 0, launched.stderr + log_path.read_text()[-3000:]
        server_pids = [json.loads(p.read_text())["pid"] for p in (data / "servers").glob("*/server.json")]
        assert server_pids
        assert "resolver" in log_path.read_text() and "restart" in log_path.read_text()
        # The operator's own tools read the log with the operator's broker user, from
        # the running up's data directory; without credentials the broker refuses.
        stats = subprocess.run([BINDERFLOW, "events", "stats", "--config", str(config)], capture_output=True, text=True, timeout=60, env=env)
        assert stats.returncode == 0 and stats.stdout.strip(), stats.stderr
        anonymous = subprocess.run(
            [BINDERFLOW, "events", "stats", "--nats", status["nats_url"]], capture_output=True, text=True, timeout=60, env=env
        )
        assert anonymous.returncode == 1 and "refused a connection without a broker user" in anonymous.stderr, anonymous.stderr
        assert "Traceback" not in anonymous.stderr
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
    assert code == 0
    pids = [status["nats_pid"], *(s["pid"] for s in status["services"].values()), *server_pids]
    _wait(lambda: not any(_alive(p) for p in pids), 15, f"processes left behind: {[p for p in pids if _alive(p)]}")
    assert not (data / "up.json").exists()
