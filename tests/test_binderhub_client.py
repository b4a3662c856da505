"""The real @jupyterhub/binderhub-client (from npm, run under Node) against the gateway."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from .harness import GitServer, Pipeline, spec_for

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).parent / "node"


def _run_client(gateway: str, provider_spec: str) -> list[dict]:
    assert (NODE_DIR / "node_modules" / "@jupyterhub" / "binderhub-client").is_dir(), "run `make node-client` (make test does it)"
    out = subprocess.run(["node", "launch.mjs", gateway, provider_spec], cwd=NODE_DIR, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_binderhub_client_fetch_reaches_ready(pipeline: Pipeline, git_server: GitServer) -> None:
    url = git_server.create(f"client-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n"})
    events = _run_client(pipeline.gateway_url, f"git/{spec_for(url, 'main')}")
    assert events[-1]["phase"] == "ready"
    assert events[0]["phase"] == "waiting"
    assert any(e["phase"] == "building" for e in events)
    ready = events[-1]
    for key in ("url", "token", "image", "repo_url", "binder_ref_url", "binder_launch_host", "binder_request", "binder_persistent_request"):
        assert ready[key], key


def test_binderhub_client_sees_failed_for_a_bad_spec(pipeline: Pipeline) -> None:
    events = _run_client(pipeline.gateway_url, "git/only-one-part")
    assert [e["phase"] for e in events] == ["failed"]
    assert "malformed" in events[0]["message"]
