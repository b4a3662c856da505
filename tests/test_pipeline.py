"""The whole pipeline, end to end: gateway, resolver, builder and launcher as separate
processes over a real nats-server, building real repositories served by `git daemon`
from a package index on 127.0.0.1, and launching real JupyterLab servers."""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.request
import uuid

import aiohttp
import pytest

from schemas import PHASES

from .harness import GitServer, Pipeline, launch, spec_for

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _name() -> str:
    return f"repo-{uuid.uuid4().hex[:8]}"


def _in_binderhub_order(phases: list[str]) -> bool:
    positions = [PHASES.index(p) for p in phases]
    return positions == sorted(positions)


def _contents(ready: dict[str, object], path: str = "") -> list[str]:
    url = f"{ready['url']}api/contents/{path}?token={ready['token']}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return sorted(item["name"] for item in json.load(resp)["content"])


def _file(ready: dict[str, object], path: str) -> str:
    url = f"{ready['url']}api/contents/{path}?token={ready['token']}&content=1&type=file&format=text"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)["content"]


async def test_requirements_repository_reaches_ready_with_live_build_log(pipeline: Pipeline, git_server: GitServer) -> None:
    url = git_server.create(_name(), {"requirements.txt": "tabulate\n", "analysis.ipynb": NOTEBOOK})
    result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))

    assert result.last["phase"] == "ready", result.events[-5:]
    assert _in_binderhub_order(result.phases)
    assert result.phases[0] == "waiting"
    assert {"fetching", "building", "built", "launching"} <= set(result.phases)
    ready = result.last
    for key in ("url", "token", "image", "repo_url", "binder_ref_url", "binder_launch_host", "binder_request", "binder_persistent_request"):
        assert ready[key], key
    assert ready["repo_url"] == url
    assert ready["binder_request"] == f"v2/git/{spec_for(url, 'main')}"
    assert ready["binder_persistent_request"].endswith(git_server.head(url.rsplit("/", 1)[1]))
    assert "analysis.ipynb" in _contents(ready)

    # Every package uv installed shows up as its own `building` line, sent while
    # the build ran: the first log line reached us well before `built`.
    log = result.messages("building")
    installed = {line.strip()[2:].split("==")[0] for line in log if line.strip().startswith("+ ")}
    assert "tabulate" in installed and "jupyterlab" in installed
    image = ready["image"]
    freeze = subprocess.run(
        [str(pipeline.data_dir / "environments" / image / "venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True, text=True, check=True,
    ).stdout
    in_env = {line.split("==")[0].lower().replace("_", "-") for line in freeze.splitlines()} - {"pip", "setuptools", "wheel"}
    assert in_env <= {name.lower().replace("_", "-") for name in installed}
    first_log = result.arrived[result.phases.index("building")]
    built = result.arrived[result.phases.index("built")]
    assert first_log < built


async def test_same_commit_relaunches_without_building_and_new_commit_rebuilds(pipeline: Pipeline, git_server: GitServer) -> None:
    name = _name()
    url = git_server.create(name, {"requirements.txt": "tabulate\n"})
    first = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert first.last["phase"] == "ready"

    again = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert again.phases == ["built", "launching", "ready"]
    assert again.events[0]["imageName"] == first.last["image"]
    assert again.last["token"] != first.last["token"]
    assert again.last["url"] != first.last["url"]
    # (How much sooner a cached relaunch is ready is measured by `make bench`, not asserted here.)

    git_server.commit(name, {"extra.py": "print('new')\n"})
    rebuilt = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert rebuilt.phases[0] == "waiting"
    assert rebuilt.last["phase"] == "ready"
    assert rebuilt.last["image"] != first.last["image"]
    assert "extra.py" in _contents(rebuilt.last)


async def test_binder_folder_wins_post_build_runs_and_start_wraps_server(pipeline: Pipeline, git_server: GitServer) -> None:
    url = git_server.create(
        _name(),
        {
            # A top-level requirement that cannot install: if it were used, the build would fail.
            "requirements.txt": "this-package-does-not-exist-anywhere==9.9\n",
            "binder/requirements.txt": "tabulate\n",
            # No `#!` line, as many repositories on mybinder.org: it runs through a shell.
            "binder/postBuild": "set -e\npython -c 'import tabulate' && echo ran > postbuild-ran.txt\necho postBuild says hello\n",
            "binder/start": "#!/bin/sh\necho \"wrapped by start: $BINDER_REQUEST\" > started-by-start.txt\nexec \"$@\"\n",
        },
    )
    result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert result.last["phase"] == "ready", result.events[-5:]
    assert "postBuild says hello\n" in result.messages("building")
    files = _contents(result.last)
    assert "postbuild-ran.txt" in files
    assert "started-by-start.txt" in files
    assert _file(result.last, "started-by-start.txt").startswith("wrapped by start: v2/git/")


@pytest.mark.parametrize(
    ("provider", "spec", "expected"),
    [
        ("nosuchprovider", "owner/repo/main", "No provider found for prefix 'nosuchprovider'"),
        ("git", "only-one-part", "malformed"),
        ("git", spec_for("git://127.0.0.1:1/nothing-listens-here", "main"), "Could not reach the repository"),
        ("git", spec_for("ext::sh -c touch% /tmp/pwned", "main"), "not a valid repository URL"),
        ("git", spec_for("file:///etc", "main"), "not allowed"),
        ("git", spec_for("https://127.0.0.1.nip.io.invalid/x", "--upload-pack=touch /tmp/pwned"), "not a valid Git ref name"),
    ],
)
async def test_bad_requests_end_in_one_clear_failed_event(pipeline: Pipeline, provider: str, spec: str, expected: str) -> None:
    result = await launch(pipeline.gateway_url, provider, spec, timeout=60)
    assert result.phases == ["failed"]
    assert expected in result.last["message"]


async def test_nonexistent_ref_fails_with_its_name(pipeline: Pipeline, git_server: GitServer) -> None:
    url = git_server.create(_name(), {"README.md": "hi\n"})
    result = await launch(pipeline.gateway_url, "git", spec_for(url, "no-such-branch"), timeout=60)
    assert result.phases == ["failed"]
    assert "no-such-branch" in result.last["message"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"requirements.txt": "this-package-does-not-exist-anywhere==9.9\n"}, "Installing the requirements failed"),
        ({"environment.yml": "dependencies: [numpy]\n"}, "environment.yml"),
        ({"runtime.txt": "python-2.5\n"}, "Python 2.5"),
        # The repository's own script fails, or cannot run at all: its failure, told once, never retried.
        ({"requirements.txt": "tabulate\n", "postBuild": "echo about to fail\nexit 3\n"}, "postBuild failed (exit status 3)"),
        ({"requirements.txt": "tabulate\n", "postBuild": "#!/no/such/interpreter\necho never\n"}, "postBuild could not be run (exit status 127)"),
    ],
)
async def test_unbuildable_repositories_fail_after_their_log_and_others_keep_working(
    pipeline: Pipeline, git_server: GitServer, files: dict[str, str], expected: str
) -> None:
    url = git_server.create(_name(), files)
    result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert result.phases.count("failed") == 1 and result.phases[-1] == "failed"
    assert result.last["message"].startswith("Build failed:")
    assert expected in result.last["message"]
    assert "built" not in result.phases
    # The failure left nothing behind that counts as built: relaunching builds again.
    again = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert again.phases[0] == "waiting" and again.phases[-1] == "failed"


async def test_failures_do_not_disturb_concurrent_launches(pipeline: Pipeline, git_server: GitServer) -> None:
    good = git_server.create(_name(), {"requirements.txt": "tabulate\n"})
    bad = git_server.create(_name(), {"requirements.txt": "this-package-does-not-exist-anywhere==9.9\n"})
    results = await asyncio.gather(
        launch(pipeline.gateway_url, "git", spec_for(good, "main")),
        launch(pipeline.gateway_url, "git", spec_for(bad, "main")),
        launch(pipeline.gateway_url, "nosuchprovider", "x/y/z"),
    )
    assert [r.last["phase"] for r in results] == ["ready", "failed", "failed"]


async def test_build_endpoint_requires_event_stream_accept_header(pipeline: Pipeline) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{pipeline.gateway_url}/build/git/x/y") as resp:
            assert resp.status == 400
            assert "text/event-stream" in await resp.text()


async def test_health_reports_every_service_and_metrics_are_served(pipeline: Pipeline) -> None:
    health = pipeline.health()
    assert health["status"] == "ok"
    assert all(health["checks"]["services"][s]["ok"] for s in ("gateway", "resolver", "builder", "launcher"))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{pipeline.gateway_url}/metrics") as resp:
            assert "binderflow_gateway_open_streams" in await resp.text()
        for service in ("resolver", "builder", "launcher"):
            port = pipeline.instances(service)[0]["http_port"]
            async with session.get(f"http://127.0.0.1:{port}/health") as resp:
                assert (await resp.json())["service"] == service
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert f"binderflow_{service}_" in await resp.text()


async def test_repository_with_pyproject_is_installed_as_a_package(pipeline: Pipeline, git_server: GitServer) -> None:
    url = git_server.create(
        _name(),
        {
            "pyproject.toml": (
                '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
                '[project]\nname = "binderflow-demo-pkg"\nversion = "0.1"\n'
                '[tool.setuptools]\npy-modules = ["demo_mod"]\n'
            ),
            "demo_mod.py": "ANSWER = 42\n",
        },
    )
    result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert result.last["phase"] == "ready", result.events[-5:]
    python = pipeline.data_dir / "environments" / result.last["image"] / "venv" / "bin" / "python"
    out = subprocess.run([str(python), "-c", "import demo_mod; print(demo_mod.ANSWER)"], capture_output=True, text=True, cwd="/")
    assert out.stdout.strip() == "42", out.stderr
