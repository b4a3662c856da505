"""The gateway's fan-out and resumable streams, directly, against a real nats-server.

No services run here: each test writes a launch's events into a namespace of its
own on the session's nats-server, as the services would, and reads them through
the fan-out (services/gateway/fanout.py) or through the real gateway app over
HTTP (/build with Last-Event-ID, /launches/<id>/events).
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas import (
    BuildLogged,
    BuildStarted,
    BuildWaiting,
    ImageBuilt,
    LaunchFailed,
    LaunchRequested,
    LoggedEvent,
    ServerLaunching,
    ServerReady,
    Subjects,
)
from schemas.identity import build_event_id, launch_build_id, launcher_event_id, requested_id, resolver_event_id
from services.gateway.app import make_app
from services.gateway.fanout import LaunchFanout, SlowWatcher, Watcher
from services.gateway.sightings import ServiceSightings
from services.gateway.sse import sse_event_id
from services.gateway.state import GatewayState
from services.runtime.bus import connect
from services.runtime.sealing import TokenSealer
from services.runtime.settings import GatewaySettings, Settings
from services.runtime.sse import read_sse

from .harness import LogNamespace

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)


class Namespace(LogNamespace):
    """A private namespace on the session's nats-server, and a writer of launches into it."""

    async def launch(self, lid: str, lines: int, *, end: str | None = "ready", build_only: bool = False) -> None:
        """Write a launch that requested, waited, logged `lines` build lines, then (optionally) ended."""
        await self.publisher.event(
            LaunchRequested(launch_id=lid, event_id=requested_id(lid), timestamp=NOW, provider="git", spec="x/main", build_only=build_only)
        )
        await self.publisher.event(BuildWaiting(launch_id=lid, event_id=resolver_event_id(lid, "waiting"), timestamp=NOW, message="Waiting\n"))
        await self.log(lid, 1, lines)
        if end is not None:
            await self.end(lid, end)

    async def log(self, lid: str, first: int, count: int) -> None:
        for n in range(first, first + count):
            await self.publisher.event(
                BuildLogged(launch_id=lid, event_id=build_event_id(lid, "b1", n), timestamp=NOW, message=f"line {n}\n", build_id="b1")
            )

    async def end(self, lid: str, how: str, token_sealed: str = "") -> None:
        if how == "failed":
            await self.publisher.event(LaunchFailed(launch_id=lid, event_id=build_event_id(lid, "b1", "failed"), timestamp=NOW, message="Build failed\n"))
            return
        await self.publisher.event(ImageBuilt(launch_id=lid, event_id=launch_build_id(lid, "built"), timestamp=NOW, image_name="env"))
        await self.publisher.event(ServerLaunching(launch_id=lid, event_id=launcher_event_id(lid, "launching"), timestamp=NOW))
        await self.publisher.event(
            ServerReady(
                launch_id=lid, event_id=launcher_event_id(lid, "ready"), timestamp=NOW, url="http://127.0.0.1:1/", token="",
                image="env", repo_url="git://x", binder_ref_url="git://x", binder_launch_host="http://gw/",
                binder_request="v2/git/x/main", binder_persistent_request="v2/git/x/" + "a" * 40, token_sealed=token_sealed,
            )
        )


@pytest.fixture
async def ns(nats_url: str) -> AsyncIterator[Namespace]:
    nc = await connect(nats_url, "fanout-test")
    yield Namespace(nc, (await LogNamespace.open(nc)).subjects)
    await nc.drain()


async def _drain(watcher: Watcher, timeout: float = 10.0) -> list[LoggedEvent]:
    """Everything the watcher gets until its launch ends (ready or failed)."""
    got: list[LoggedEvent] = []

    async def read() -> None:
        async for item in watcher:
            got.append(item)
            if item.event.phase in ("ready", "failed"):
                return

    await asyncio.wait_for(read(), timeout)
    return got


async def _consumers(ns: Namespace) -> int:
    info = await ns.js.stream_info(ns.subjects.events_stream)
    return info.state.consumer_count


# -- the fan-out -------------------------------------------------------------------


async def test_many_watchers_of_one_launch_share_one_consumer_and_each_get_every_event_in_order(ns: Namespace) -> None:
    fanout = LaunchFanout(ns.js, ns.subjects)
    lid = "launch-shared"
    await ns.launch(lid, 3, end=None)
    first = await fanout.watch(lid)
    second = await fanout.watch(lid)
    assert fanout.launches_watched == 1 and await _consumers(ns) == 1
    await ns.log(lid, 4, 2)
    third = await fanout.watch(lid)  # joins late: gets the history this process already read
    await ns.end(lid, "ready")
    results = [await _drain(w) for w in (first, second, third)]
    phases = ["requested", "waiting"] + ["building"] * 5 + ["built", "launching", "ready"]
    for got in results:
        assert [e.event.phase for e in got] == phases
        assert [e.seq for e in got] == sorted(e.seq for e in got)
    assert results[0] == results[1] == results[2]
    for w in (first, second, third):
        await w.close()
    # The last watcher gone, the launch is no longer followed here (the server drops
    # the unsubscribed ephemeral consumer after its inactivity threshold).
    assert fanout.launches_watched == 0


async def test_a_watcher_from_a_position_gets_what_follows_plus_the_launch_facts_before_it(ns: Namespace) -> None:
    fanout = LaunchFanout(ns.js, ns.subjects)
    lid = "launch-resumed"
    await ns.launch(lid, 6, end="ready")
    everything = await _drain(await fanout.watch(lid))
    cut = everything[4].seq  # after the third log line
    async with await fanout.watch(lid, after_seq=cut) as resumed:
        got = await _drain(resumed)
    # The request fact comes along (it says what the launch is), then exactly what the client missed.
    assert [e.event.phase for e in got if e.seq <= cut] == ["requested"]
    assert [e for e in got if e.seq > cut] == [e for e in everything if e.seq > cut]


async def test_a_watcher_resuming_after_the_end_gets_nothing_more_and_ends(ns: Namespace) -> None:
    fanout = LaunchFanout(ns.js, ns.subjects)
    lid = "launch-over"
    await ns.launch(lid, 2, end="failed")
    everything = await _drain(await fanout.watch(lid))
    async with await fanout.watch(lid, after_seq=everything[-1].seq) as late:
        got = [item async for item in late]
    assert [e.event.phase for e in got] == ["requested"]


async def test_a_watcher_that_falls_too_far_behind_is_disconnected_and_others_go_on(ns: Namespace) -> None:
    fanout = LaunchFanout(ns.js, ns.subjects, watcher_queue_limit=20)
    lid = "launch-slow"
    slow = await fanout.watch(lid)
    keeping_up = await fanout.watch(lid)
    seen: list[LoggedEvent] = []

    async def keep_up() -> None:
        async for item in keeping_up:
            seen.append(item)
            if item.event.phase == "ready":
                return

    reader = asyncio.create_task(keep_up())
    await ns.launch(lid, 60, end="ready")
    await asyncio.wait_for(reader, 10)
    with pytest.raises(SlowWatcher):
        async for _ in slow:
            pass
    assert len(seen) == 2 + 60 + 3
    await slow.close()
    await keeping_up.close()
    assert fanout.launches_watched == 0


# -- resumable streams over HTTP -------------------------------------------------------


def _state(ns: Namespace, sealer: TokenSealer, **gateway: Any) -> GatewayState:
    settings = Settings(gateway=GatewaySettings(**gateway))
    return GatewayState(
        settings=settings, subjects=ns.subjects, js=ns.js, publisher=ns.publisher, fanout=LaunchFanout(ns.js, ns.subjects),
        sightings=ServiceSightings(30.0), nats_connected=lambda: True, sealer=sealer,
    )


@pytest.fixture
def sealer() -> TokenSealer:
    return TokenSealer(os.urandom(32))


async def _open(client: TestClient, path: str, last_event_id: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    got = []
    async with client.get(path, headers=headers) as resp:
        assert resp.status == 200
        async for event in read_sse(resp.content):
            got.append((event.id or "", event.json()))
            if event.json()["phase"] in ("ready", "failed"):
                break
    return got


async def test_a_client_reconnecting_with_last_event_id_gets_the_rest_once_from_any_gateway(ns: Namespace, sealer: TokenSealer) -> None:
    lid = "launch-resume-http"
    token_sealed = sealer.seal("the-jupyter-token", lid)
    await ns.launch(lid, 5, end=None)
    await ns.end(lid, "ready", token_sealed=token_sealed)
    key = sealer.watch_key(lid)
    # Two gateway processes (two apps, two fan-outs) on one log.
    first = TestClient(TestServer(make_app(_state(ns, sealer)), host="127.0.0.1"))
    second = TestClient(TestServer(make_app(_state(ns, sealer)), host="127.0.0.1"))
    await first.start_server()
    await second.start_server()
    try:
        whole = await _open(first, f"/launches/{lid}/events?key={key}")
        assert [e["phase"] for _, e in whole] == ["waiting"] + ["building"] * 5 + ["built", "launching", "ready"]
        assert whole[-1][1]["token"] == "the-jupyter-token" and "token_sealed" not in whole[-1][1]
        # The id names the launch, its position in the log and the watch key.
        assert all(event_id.startswith(f"{lid}:") and event_id.endswith(f":{key}") for event_id, _ in whole)
        # Reconnect to the other gateway at /build (as a browser's EventSource does), after the third event.
        rest = await _open(second, "/build/git/x/main", last_event_id=whole[2][0])
        assert rest == whole[3:]
        # A forged key is no resume: that request would start a launch instead, so ask /launches.
        forged = sse_event_id(lid, 0, "not-the-key")
        async with second.get(f"/launches/{lid}/events", headers={"Last-Event-ID": forged, "Accept": "text/event-stream"}) as resp:
            assert resp.status == 403
        async with second.get("/launches/never-launched-here/events?key=" + sealer.watch_key("never-launched-here")) as resp:
            assert resp.status == 404
    finally:
        await first.close()
        await second.close()


async def test_open_streams_carry_the_binderhub_heartbeat_comment(ns: Namespace, sealer: TokenSealer) -> None:
    """aiohttp-sse's private ping is replaced by `:heartbeat` (services/gateway/sse.py);
    this is what the aiohttp-sse lower bound in pyproject.toml is checked against."""
    lid = "launch-quiet"
    await ns.launch(lid, 1, end=None)
    client = TestClient(TestServer(make_app(_state(ns, sealer, heartbeat_interval_seconds=0.2)), host="127.0.0.1"))
    await client.start_server()
    try:
        async with client.get(f"/launches/{lid}/events?key={sealer.watch_key(lid)}", headers={"Accept": "text/event-stream"}) as resp:
            body = b""
            deadline = asyncio.get_running_loop().time() + 10
            while body.replace(b"\r\n", b"\n").count(b":heartbeat\n\n") < 2 and asyncio.get_running_loop().time() < deadline:
                body += await asyncio.wait_for(resp.content.readany(), 5)
        assert body.replace(b"\r\n", b"\n").count(b":heartbeat\n\n") >= 2
        assert b"data: " in body  # the launch's events came first
    finally:
        await client.close()


async def test_a_build_only_launch_resumed_elsewhere_still_names_its_image(ns: Namespace, sealer: TokenSealer) -> None:
    """A resumed stream learns the launch was build-only from its `requested` fact, so the
    `ready` it sends has BinderHub's build-only `imageName`."""
    lid = "launch-build-only"
    await ns.launch(lid, 2, end="ready", build_only=True)
    client = TestClient(TestServer(make_app(_state(ns, sealer)), host="127.0.0.1"))
    await client.start_server()
    try:
        whole = await _open(client, f"/launches/{lid}/events?key={sealer.watch_key(lid)}")
        rest = await _open(client, "/build/git/x/main", last_event_id=whole[1][0])
        assert rest[-1][1]["phase"] == "ready" and rest[-1][1]["imageName"] == "env"
    finally:
        await client.close()



# -- build logs after the fact ---------------------------------------------------------


async def test_a_build_log_is_sent_as_read_from_the_log_and_an_unknown_launch_is_404(ns: Namespace, sealer: TokenSealer) -> None:
    lid = "launch-logged"
    await ns.launch(lid, 500, end="failed")
    await ns.publisher.build_started(
        BuildStarted(launch_id=lid, event_id=build_event_id(lid, "b1", "started"), timestamp=NOW, build_id="b1", image_name="env", repo_url="git://x/logged")
    )
    client = TestClient(TestServer(make_app(_state(ns, sealer)), host="127.0.0.1"))
    await client.start_server()
    try:
        async with client.get(f"/launches/{lid}/log") as resp:
            assert resp.status == 200 and resp.headers["X-Binderflow-Launch-Id"] == lid
            assert resp.headers.get("Transfer-Encoding") == "chunked"  # streamed, not built whole first
            text = await resp.text()
        assert text == "Waiting\n" + "".join(f"line {n}\n" for n in range(1, 501)) + "Build failed\n"
        async with client.get("/logs", params={"repo": "git://x/logged"}) as resp:
            assert resp.status == 200 and await resp.text() == text
        async with client.get("/launches/launch-never-run/log") as resp:
            assert resp.status == 404 and "No launch launch-never-run" in await resp.text()
        async with client.get("/logs", params={"repo": "git://x/never-built"}) as resp:
            assert resp.status == 404
    finally:
        await client.close()
