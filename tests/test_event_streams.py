"""The event log as a product: resumable SSE streams, attaching to a launch, build logs
after the fact, and no secrets in the log.

Real components throughout: separate service processes over a real nats-server,
repositories served by `git daemon`, real JupyterLab servers. Where GitHub is
needed, its API is the recorded-response stand-in in tests/standins (GitHub
itself cannot be reached from a test).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import aiohttp
import nats
import pytest
from nats.js import api as jsapi

from schemas import BuildLogged, ServerReady, Subjects
from services.gateway.sse import client_event_json, parse_resume_point, sse_event_id
from schemas import LoggedEvent
from services.runtime.eventlog import build_log_text
from services.runtime.sealing import SealError, TokenSealer
from services.runtime.sse import LaunchStream

from .harness import GitServer, free_port, launch, spec_for, wait_http
from .standins.github_api import GitHubApiStandIn

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
LID = "0123456789abcdef0123456789abcdef"
KEY = bytes(range(32))

# A build that takes a few seconds and says so line by line.
SLOW_POST_BUILD = "#!/bin/sh\nfor i in $(seq 1 25); do echo \"postBuild line $i\"; sleep 0.2; done\n"


def _ready(**overrides: object) -> ServerReady:
    fields: dict[str, object] = dict(
        launch_id=LID, event_id=f"{LID}.launch.ready", timestamp=NOW, url="http://127.0.0.1:1/user/x/", token="",
        image="env", repo_url="https://example.org/r", binder_ref_url="https://example.org/r/tree/abc",
        binder_launch_host="http://127.0.0.1:8585/", binder_request="v2/git/x/main", binder_persistent_request="v2/git/x/abc",
    )
    fields.update(overrides)
    return ServerReady(**fields)  # type: ignore[arg-type]


# -- pure parts ---------------------------------------------------------------


def test_sealed_token_opens_only_for_its_launch_and_key() -> None:
    sealer = TokenSealer(KEY)
    sealed = sealer.seal("jupyter-token-1", LID)
    assert "jupyter-token-1" not in sealed
    assert sealer.unseal(sealed, LID) == "jupyter-token-1"
    with pytest.raises(SealError):
        sealer.unseal(sealed, "another-launch-id-0000")
    with pytest.raises(SealError):
        TokenSealer(bytes(32)).unseal(sealed, LID)
    with pytest.raises(SealError):
        sealer.unseal("v1.garbage", LID)


def test_client_gets_the_unsealed_token_and_binderhubs_fields_only() -> None:
    sealer = TokenSealer(KEY)
    stored = _ready(token_sealed=sealer.seal("tok", LID))
    sent = json.loads(client_event_json(stored, False, sealer))
    assert sent["token"] == "tok" and "token_sealed" not in sent
    assert sent["phase"] == "ready" and sent["url"] == "http://127.0.0.1:1/user/x/"
    # A gateway without the key cannot open it, and says nothing secret.
    assert json.loads(client_event_json(stored, False, TokenSealer(bytes(32))))["token"] == ""
    # BinderHub's build-only ready names the image.
    assert json.loads(client_event_json(_ready(url="", image="img"), True, sealer))["imageName"] == "img"


def test_resume_points_name_launch_position_and_key() -> None:
    sealer = TokenSealer(KEY)
    key = sealer.watch_key(LID)
    point = parse_resume_point(sse_event_id(LID, 42, key))
    assert point is not None and (point.launch_id, point.after_seq, point.watch_key) == (LID, 42, key)
    assert sealer.check_watch_key(LID, key) and not sealer.check_watch_key("other-launch-0000", key)
    for bad in (None, "", "42", f"{LID}:x:{key}", f"BAD ID:1:{key}", f"{LID}:1", "a:b:c:d"):
        assert parse_resume_point(bad) is None, bad


def test_build_log_text_keeps_the_build_lines_in_order() -> None:
    events = [
        LoggedEvent(1, BuildLogged(launch_id=LID, event_id=f"{LID}.build.b1.1", timestamp=NOW, message="one\n")),
        LoggedEvent(2, BuildLogged(launch_id=LID, event_id=f"{LID}.build.b1.2", timestamp=NOW, message="two")),
        LoggedEvent(3, _ready(message="server running\n")),
    ]
    assert build_log_text(events) == "one\ntwo\n"


# -- through the real services ------------------------------------------------


async def _collect(stream: LaunchStream, on_event=None) -> list[tuple[str, dict]]:
    got: list[tuple[str, dict]] = []
    async for event in stream.events():
        got.append((event.id or "", event.json()))
        if on_event is not None:
            await on_event(event.json())
    return got


def _seq(event_id: str) -> int:
    return int(event_id.split(":")[1])


@pytest.mark.slow
async def test_killed_gateway_client_resumes_on_another_with_every_event_once_in_order(make_pipeline, git_server: GitServer) -> None:
    pipeline = make_pipeline().start_all()
    second_port = free_port()
    pipeline.start("gateway", BINDERFLOW_GATEWAY_PORT=str(second_port))
    second = f"http://127.0.0.1:{second_port}"
    pipeline.wait_healthy()
    wait_http(second + "/health", 60)
    url = git_server.create(f"slow-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n", "postBuild": SLOW_POST_BUILD})

    first_gateway = pipeline.procs["gateway"][0]

    async def kill_mid_build(event: dict) -> None:
        if event["phase"] == "building" and "postBuild line 3" in event["message"] and first_gateway.poll() is None:
            first_gateway.kill()  # no goodbye: the connection just drops

    async with aiohttp.ClientSession() as session:
        stream = LaunchStream(session, [pipeline.gateway_url, second], f"/build/git/{spec_for(url, 'main')}")
        got = await asyncio.wait_for(_collect(stream, kill_mid_build), 240)
        assert first_gateway.poll() is not None, "the gateway was never killed: the build gave no postBuild line 3"
        assert stream.reconnects >= 1
        assert got[-1][1]["phase"] == "ready", got[-5:]

        # Nothing twice, in order: positions strictly increase.
        positions = [_seq(i) for i, _ in got]
        assert positions == sorted(set(positions))
        lines = [e["message"].strip() for _, e in got if e["phase"] == "building" and e["message"].startswith("postBuild line")]
        assert lines == [f"postBuild line {i}" for i in range(1, 26)]

        # Nothing lost: the same as a watcher that read the whole launch from the log.
        assert stream.watch_url and stream.launch_id
        everything = await asyncio.wait_for(_collect(LaunchStream(session, [second], stream.watch_url)), 60)
        assert [i for i, _ in everything] == [i for i, _ in got]
        assert [e for _, e in everything] == [e for _, e in got]


@pytest.mark.slow
async def test_second_client_attaches_to_a_launch_under_way_and_gets_it_from_the_start(pipeline, git_server: GitServer) -> None:
    url = git_server.create(f"attach-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n", "postBuild": SLOW_POST_BUILD})
    async with aiohttp.ClientSession() as session:
        starter = LaunchStream(session, [pipeline.gateway_url], f"/build/git/{spec_for(url, 'main')}")
        first_events: list[tuple[str, dict]] = []
        attached: asyncio.Task[list[tuple[str, dict]]] | None = None

        async def attach_once_building(event: dict) -> None:
            nonlocal attached
            if attached is None and event["phase"] == "building":
                assert starter.watch_url
                attached = asyncio.create_task(_collect(LaunchStream(session, [pipeline.gateway_url], starter.watch_url)))

        first_events = await asyncio.wait_for(_collect(starter, attach_once_building), 240)
        assert attached is not None
        second_events = await asyncio.wait_for(attached, 60)
        assert second_events == first_events
        assert first_events[-1][1]["phase"] == "ready"

        # The launch id alone does not open the stream (it is in the analytics log).
        async with session.get(f"{pipeline.gateway_url}/launches/{starter.launch_id}/events?key=wrong", headers={"Accept": "text/event-stream"}) as resp:
            assert resp.status == 403
        unknown = uuid.uuid4().hex
        from services.runtime.sealing import load_sealer
        from services.runtime.settings import load_settings

        key = load_sealer(load_settings(environ={"BINDERFLOW_DATA_DIR": str(pipeline.data_dir)})).watch_key(unknown)
        async with session.get(f"{pipeline.gateway_url}/launches/{unknown}/events?key={key}", headers={"Accept": "text/event-stream"}) as resp:
            assert resp.status == 404

        # The same log, after the fact, as text; by launch and as the repository's latest build.
        async with session.get(f"{pipeline.gateway_url}/launches/{starter.launch_id}/log") as resp:
            assert resp.status == 200
            launch_log = await resp.text()
        async with session.get(f"{pipeline.gateway_url}/logs", params={"repo": url}) as resp:
            assert resp.status == 200
            assert await resp.text() == launch_log
        for i in range(1, 26):
            assert f"postBuild line {i}\n" in launch_log
        async with session.get(f"{pipeline.gateway_url}/logs", params={"repo": "git://127.0.0.1:1/never-built"}) as resp:
            assert resp.status == 404

    # `binderflow logs REPO` prints the same text.
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services", "logs", url, "--gateway", pipeline.gateway_url,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0, err
    assert out.decode() == launch_log


def pipeline_index_with_password(index_url: str, password: str) -> str:
    """The test package index's URL with credentials in it, as an operator's private index has."""
    return index_url.replace("http://", f"http://binder:{password}@", 1)


@pytest.mark.slow
async def test_no_secret_anywhere_in_the_event_log_or_service_logs(make_pipeline, package_index: str, git_server: GitServer) -> None:
    """Launches with provider tokens and a package index password configured; then every
    message of every stream (payloads and headers) and every service log is searched
    for them and for the Jupyter tokens the clients received. One repository's
    postBuild prints its whole environment into its (public) build log.

    GitHub's API is the recorded-response stand-in; its repositories are served by `git daemon`.
    """
    github_token = "ghp_SECRETSCAN" + uuid.uuid4().hex
    gitlab_token = "glpat-SECRETSCAN" + uuid.uuid4().hex
    index_password = "idx-SECRETSCAN" + uuid.uuid4().hex
    owner, repo = f"org-{uuid.uuid4().hex[:8]}", "scan"
    git_server.create(f"{owner}/{repo}", {"requirements.txt": "tabulate\n"})
    sha = git_server.head(f"{owner}/{repo}")
    async with GitHubApiStandIn(expected_token=github_token) as api:
        api.add_repo(owner, repo, branches={"main": sha})
        pipeline = make_pipeline(
            # The test index does not ask for a password; uv sends it all the same.
            BINDERFLOW_BUILDER_FIND_LINKS=pipeline_index_with_password(package_index, index_password),
            BINDERFLOW_PROVIDERS_GITHUB_API_URL=api.url,
            BINDERFLOW_PROVIDERS_GITHUB_URL=f"git://127.0.0.1:{git_server.port}",
            BINDERFLOW_PROVIDERS_GITHUB_TOKEN=github_token,
            BINDERFLOW_PROVIDERS_GITLAB_TOKEN=gitlab_token,
            BINDERFLOW_LOG_LEVEL="DEBUG",
        ).start_all()
        pipeline.wait_healthy()
        results = [await launch(pipeline.gateway_url, "gh", f"{owner}/{repo}/main")]
        results.append(await launch(pipeline.gateway_url, "gh", f"{owner}/{repo}/main"))
        git_url = git_server.create(f"plain-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n", "postBuild": "env\ncat /proc/self/cmdline\n"})
        results.append(await launch(pipeline.gateway_url, "git", spec_for(git_url, "main")))
        results.append(await launch(pipeline.gateway_url, "gh", f"{owner}/{repo}/no-such-branch", timeout=60))
    jupyter_tokens = [r.last["token"] for r in results if r.last["phase"] == "ready"]
    assert len(jupyter_tokens) == 3 and all(jupyter_tokens)
    assert any(m.startswith("VIRTUAL_ENV=") for m in results[2].messages("building"))  # the environment was printed
    assert not any(index_password in m for r in results for m in r.messages("building"))
    secrets = [github_token, gitlab_token, index_password, *jupyter_tokens]

    subjects = Subjects(pipeline.prefix)
    nc = await nats.connect(pipeline.nats_url)
    scanned = 0
    try:
        js = nc.jetstream()
        for stream in (subjects.events_stream, subjects.commands_stream):
            sub = await js.subscribe(f"{pipeline.prefix}.>", stream=stream, ordered_consumer=True, deliver_policy=jsapi.DeliverPolicy.ALL)
            while True:
                try:
                    msg = await sub.next_msg(timeout=3)
                except asyncio.TimeoutError:
                    break
                scanned += 1
                text = msg.data.decode(errors="replace") + json.dumps(msg.headers or {})
                for secret in secrets:
                    assert secret not in text, f"a secret is in {msg.subject}"
                if msg.metadata.num_pending == 0:
                    break
            await sub.unsubscribe()
    finally:
        await nc.close()
    assert scanned > 20  # the scan read the launches, not an empty stream
    for log_file in pipeline.log_dir.glob(f"{pipeline.prefix}-*.log"):
        text = log_file.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, log_file.name
