"""BinderHub's HTTP API on a running gateway: redirects, provider config, versions,
badges, Prometheus metrics computed from real launches, build-only builds, build
tokens and network bans, all against real services over a real nats-server."""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
import urllib.request
import uuid
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from services.gateway.tokens import make_build_token
from services.runtime.sse import read_sse

from .harness import GitServer, Pipeline, launch, spec_for, wait_http

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow

SECRET = "integration-test-build-token-secret-0123456789"


def _name() -> str:
    return f"api-{uuid.uuid4().hex[:8]}"


async def _stream(url: str, headers: dict[str, str] | None = None, timeout: float = 240) -> list[dict[str, Any]]:
    """The events of one /build request (any query string), until ready or failed."""
    events: list[dict[str, Any]] = []

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            hdrs = {"Accept": "text/event-stream", **(headers or {})}
            async with session.get(URL(url, encoded=True), headers=hdrs, timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
                assert resp.status == 200, resp.status
                async for event in read_sse(resp.content):
                    events.append(event.json())
                    if events[-1].get("phase") in ("ready", "failed"):
                        return

    await asyncio.wait_for(run(), timeout)
    return events


def _metric(gateway_url: str, name: str, **labels: str) -> float:
    """One sample of the gateway's /metrics (0 if absent)."""
    with urllib.request.urlopen(gateway_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def _get(url: str, **kw: Any) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.get(URL(url, encoded=True), **kw) as resp:
            return resp.status, dict(resp.headers), await resp.read()


# -- the session pipeline ----------------------------------------------------------


async def test_legacy_repo_link_redirects_to_v2(pipeline: Pipeline) -> None:
    status, headers, _ = await _get(f"{pipeline.gateway_url}/repo/binder-examples/requirements/notebooks/index.ipynb", allow_redirects=False)
    assert status == 302
    assert headers["Location"] == "/v2/gh/binder-examples/requirements/master?urlpath=%2Fnotebooks%2Findex.ipynb"
    status, headers, _ = await _get(f"{pipeline.gateway_url}/repo/binder-examples/requirements/", allow_redirects=False)
    assert status == 302 and headers["Location"] == "/v2/gh/binder-examples/requirements/master"


async def test_config_and_repoproviders_describe_the_enabled_providers(pipeline: Pipeline) -> None:
    status, headers, body = await _get(f"{pipeline.gateway_url}/_config")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    config = json.loads(body)
    assert config["git"]["display_name"] == "Git repository" and config["git"]["ref_prop_disabled"] is False
    assert config["zenodo"]["ref_prop_disabled"] is True
    status, _, body = await _get(f"{pipeline.gateway_url}/api/repoproviders")
    providers = json.loads(body)
    assert status == 200 and isinstance(providers, list)
    git = next(p for p in providers if p["id"] == "git")
    assert git["repo"]["urlEncode"] is True and git["ref"]["enabled"] is True and git["spec"]["validateRegex"]


async def test_versions_name_binderflow(pipeline: Pipeline) -> None:
    status, _, body = await _get(f"{pipeline.gateway_url}/versions")
    versions = json.loads(body)
    assert status == 200 and versions["binderhub"].startswith("binderflow ") and versions["builder"]


async def test_badge_logo_is_an_svg(pipeline: Pipeline) -> None:
    status, headers, body = await _get(f"{pipeline.gateway_url}/badge_logo.svg")
    assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
    assert body.startswith(b"<svg") and b'height="20"' in body


async def test_build_only_is_refused_without_api_only_mode(pipeline: Pipeline, git_server: GitServer) -> None:
    url = git_server.create(_name(), {"README.md": "hi\n"})
    events = await _stream(f"{pipeline.gateway_url}/build/git/{spec_for(url, 'main')}?build_only=true", timeout=60)
    assert [e["phase"] for e in events] == ["failed"]
    assert events[0]["status_code"] == 400 and "Building but not launching is not permitted" in events[0]["message"]


async def test_binderhub_metrics_count_a_launch_and_a_failed_build(pipeline: Pipeline, git_server: GitServer) -> None:
    gw = pipeline.gateway_url
    good = git_server.create(_name(), {"requirements.txt": "tabulate\n"})
    builds_before = _metric(gw, "binderhub_build_time_seconds_count", status="success")
    launches_before = _metric(gw, "binderhub_launch_time_seconds_count", status="success", retries="0")
    result = await launch(gw, "git", spec_for(good, "main"))
    assert result.last["phase"] == "ready", result.events[-3:]
    assert _metric(gw, "binderhub_build_count_total", status="success", provider="Git", repo=good) == 1
    assert _metric(gw, "binderhub_launch_count_total", status="success", provider="Git", repo=good) == 1
    assert _metric(gw, "binderhub_build_time_seconds_count", status="success") == builds_before + 1
    assert _metric(gw, "binderhub_launch_time_seconds_count", status="success", retries="0") == launches_before + 1

    # Relaunching the same commit launches without a build.
    again = await launch(gw, "git", spec_for(good, "main"))
    assert again.phases == ["built", "launching", "ready"]
    assert _metric(gw, "binderhub_build_count_total", status="success", provider="Git", repo=good) == 1
    assert _metric(gw, "binderhub_launch_count_total", status="success", provider="Git", repo=good) == 2

    bad = git_server.create(_name(), {"requirements.txt": "this-package-does-not-exist-anywhere==9.9\n"})
    failures_before = _metric(gw, "binderhub_build_time_seconds_count", status="failure")
    result = await launch(gw, "git", spec_for(bad, "main"))
    assert result.last["phase"] == "failed"
    assert _metric(gw, "binderhub_build_count_total", status="failure", provider="Git", repo=bad) == 1
    assert _metric(gw, "binderhub_build_time_seconds_count", status="failure") == failures_before + 1
    assert _metric(gw, "binderhub_launch_count_total", provider="Git", repo=bad) == 0

    # A request that fails before any build is neither a build nor a launch.
    await launch(gw, "git", spec_for(git_server.url("no-such-repository"), "main"), timeout=60)
    assert _metric(gw, "binderhub_build_count_total", repo=git_server.url("no-such-repository")) == 0


# -- API-only mode with required build tokens -----------------------------------------


async def test_build_only_with_required_build_tokens(make_pipeline: Any, git_server: GitServer) -> None:
    p: Pipeline = make_pipeline(
        BINDERFLOW_GATEWAY_ENABLE_API_ONLY_MODE="true",
        BINDERFLOW_GATEWAY_BUILD_TOKEN_SECRET=SECRET,
        BINDERFLOW_GATEWAY_REQUIRE_BUILD_TOKEN="true",
        # Another client network is banned; this one (127.0.0.1) is not.
        BINDERFLOW_GATEWAY_BAN_NETWORKS='{"127.0.0.2/32": "banned"}',
    ).start_all()
    p.wait_healthy()
    url = git_server.create(_name(), {"requirements.txt": "tabulate\n"})
    spec = spec_for(url, "main")
    build = f"{p.gateway_url}/build/git/{spec}"
    origin = f"127.0.0.1:{p.gateway_port}"  # the Host header this client sends

    def token(provider_spec: str = f"git/{spec}", seconds: float = 300, issued: float | None = None, at: str = origin) -> str:
        return make_build_token(SECRET, provider_spec, at, seconds, time.time() if issued is None else issued)

    refusals = {
        "": "A build token is required",
        "?build_token=garbage": "Invalid build token",
        f"?build_token={token(issued=time.time() - 600)}": "expired",
        f"?build_token={token(provider_spec='git/' + spec_for(url, 'other'))}": "another repository",
        f"?build_token={token(at='elsewhere.example')}": "another site",
    }
    for query, reason in refusals.items():
        events = await _stream(build + query + ("&" if query else "?") + "build_only=true", timeout=60)
        assert [e["phase"] for e in events] == ["failed"], (query, events)
        assert events[0]["status_code"] == 403 and reason in events[0]["message"], (query, events)

    events = await _stream(f"{build}?build_only=true&build_token={token()}")
    phases = [e["phase"] for e in events]
    assert phases[0] == "waiting" and phases[-1] == "ready", events[-3:]
    assert "launching" not in phases and "built" not in phases
    ready = events[-1]
    assert ready["message"] == "Done! Image built\n" and ready["imageName"] and ready["url"] == ""
    assert (p.data_dir / "environments" / ready["imageName"]).is_dir()
    assert _metric(p.gateway_url, "binderhub_build_count_total", status="success", provider="Git", repo=url) == 1
    assert _metric(p.gateway_url, "binderhub_launch_count_total", repo=url) == 0
    assert _metric(p.gateway_url, "binderhub_inprogress_builds") == 0

    # Built already: one `ready`. A trailing slash is not part of the spec, but it is
    # part of the URL the token was made for.
    events = await _stream(f"{build}/?build_only=true&build_token={token(f'git/{spec}/')}", timeout=60)
    assert [e["phase"] for e in events] == ["ready"], events
    assert events[0]["message"] == "Done! Found built image\n" and events[0]["imageName"] == ready["imageName"]

    # API-only mode still launches when build_only is not asked for.
    events = await _stream(f"{build}?build_token={token()}")
    assert [e["phase"] for e in events] == ["built", "launching", "ready"], events[-3:]
    assert events[-1]["url"].startswith("http://127.0.0.1:") and events[-1]["token"]
    assert _metric(p.gateway_url, "binderhub_launch_count_total", status="success", provider="Git", repo=url) == 1


# -- the loading page's own stream, with build tokens required ----------------------


async def test_loading_page_stream_launches_with_its_build_token(make_pipeline: Any, git_server: GitServer) -> None:
    p: Pipeline = make_pipeline(
        BINDERFLOW_GATEWAY_BUILD_TOKEN_SECRET=SECRET,
        BINDERFLOW_GATEWAY_REQUIRE_BUILD_TOKEN="true",
    ).start_all()
    p.wait_healthy()
    url = git_server.create(_name(), {"requirements.txt": "tabulate\n"})
    spec = spec_for(url, "main")
    status, _, page = await _get(f"{p.gateway_url}/v2/git/{spec}")
    assert status == 200
    found = re.search(r'data-build-url="([^"]+)"', page.decode())
    assert found, page[:2000]
    build_url = html.unescape(found.group(1))
    assert build_url.startswith(f"/build/git/{spec}?build_token=")

    # The stream the page opens (same site, so no Origin header) is accepted and launches.
    events = await _stream(p.gateway_url + build_url)
    assert events[-1]["phase"] == "ready", events[-3:]
    assert events[-1]["url"].startswith("http://127.0.0.1:") and events[-1]["token"]
    # Without the page's token the same stream is refused.
    events = await _stream(f"{p.gateway_url}/build/git/{spec}", timeout=60)
    assert [e["phase"] for e in events] == ["failed"] and events[0]["status_code"] == 403


# -- banned networks -----------------------------------------------------------------


async def test_banned_network_is_refused(make_pipeline: Any) -> None:
    p: Pipeline = make_pipeline(BINDERFLOW_GATEWAY_BAN_NETWORKS='{"127.0.0.0/8": "this test network"}')
    p.start("gateway")
    wait_http(p.gateway_url + "/versions")
    message = "Requests from this test network are not allowed"
    for path in ("/", "/_config", "/api/repoproviders", "/badge_logo.svg", "/repo/u/r"):
        status, _, body = await _get(p.gateway_url + path, allow_redirects=False)
        assert status == 403 and message in body.decode(), path
    events = await _stream(f"{p.gateway_url}/build/gh/o/r/HEAD", timeout=30)
    assert events == [{"phase": "failed", "status_code": 403, "message": message + "\n"}]
    # Version checks and the operators' probes still answer.
    assert (await _get(p.gateway_url + "/versions"))[0] == 200
    assert (await _get(p.gateway_url + "/metrics"))[0] == 200
    assert (await _get(p.gateway_url + "/health"))[0] in (200, 503)
