"""Who may use the broker and for what (services/runtime/brokerauth.py), against a real nats-server.

The server runs with the authorization `binderflow up` gives it; each test
connects as one user (or none) and tries what that user may and may not do.
"""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from pathlib import Path
from typing import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NoStreamResponseError

from schemas import Subjects
from schemas.commands import BuildImage, ResolveRef, StartServer
from services.runtime.brokerauth import BROKER_USERS, load_or_create_credentials, permissions, server_authorization
from services.runtime.bus import ensure_streams
from services.runtime.embedded import start_nats_server
from services.runtime.settings import Settings

from .harness import stop_process

SUBJECTS = Subjects("authtest")


def test_credentials_are_made_once_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "nats" / "credentials.json"
    made = load_or_create_credentials(path)
    assert set(made.passwords) == set(BROKER_USERS)
    assert len(set(made.passwords.values())) == len(BROKER_USERS)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_credentials(path) == made


def test_each_service_may_issue_only_its_own_commands() -> None:
    issued = {
        user: {s for s in permissions(user, SUBJECTS)["publish"]["allow"] if ".cmd." in s}
        for user in ("gateway", "resolver", "builder", "launcher")
    }
    assert issued == {
        "gateway": {SUBJECTS.commands(ResolveRef)},
        "resolver": {SUBJECTS.commands(BuildImage), SUBJECTS.commands(StartServer)},
        "builder": {SUBJECTS.commands(StartServer)},
        "launcher": set(),
    }


def test_no_service_may_touch_another_installations_streams() -> None:
    other = Subjects("other")
    for user in BROKER_USERS:
        allowed = json.dumps(permissions(user, SUBJECTS))
        assert other.events_stream not in allowed and f"{other.prefix}." not in allowed


@pytest.fixture(scope="module")
def secured_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    root = tmp_path_factory.mktemp("authnats")
    credentials = load_or_create_credentials(root / "credentials.json")
    proc, url, _ = start_nats_server(root / "store", authorization=server_authorization(credentials, SUBJECTS))
    yield url, credentials.passwords
    stop_process(proc)


async def _as(url: str, passwords: dict[str, str], user: str) -> NATS:
    errors: list[Exception] = []

    async def error_cb(exc: Exception) -> None:
        errors.append(exc)

    nc = await nats.connect(url, user=user, password=passwords[user], error_cb=error_cb, max_reconnect_attempts=0)
    nc._test_errors = errors  # type: ignore[attr-defined]
    return nc


@pytest.fixture
async def streams(secured_nats: tuple[str, dict[str, str]]) -> AsyncIterator[None]:
    url, passwords = secured_nats
    nc = await _as(url, passwords, "gateway")
    try:
        await ensure_streams(nc.jetstream(), SUBJECTS, Settings(subject_prefix=SUBJECTS.prefix))
        yield
    finally:
        await nc.close()


def _hello(url: str, connect: dict[str, object]) -> str:
    """What the server answers a client that sends `connect` (NATS's CONNECT) and a PING."""
    host, port = url.removeprefix("nats://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.recv(4096)  # INFO
        conn.sendall(b"CONNECT " + json.dumps({"verbose": False, **connect}).encode() + b"\r\nPING\r\n")
        return conn.recv(4096).decode()


@pytest.mark.slow
def test_nothing_connects_without_credentials(secured_nats: tuple[str, dict[str, str]]) -> None:
    url, passwords = secured_nats
    assert "Authorization Violation" in _hello(url, {})
    assert "Authorization Violation" in _hello(url, {"user": "builder", "pass": "guess"})
    assert "PONG" in _hello(url, {"user": "builder", "pass": passwords["builder"]})


@pytest.mark.slow
async def test_a_builder_may_publish_its_work_but_not_a_command_it_does_not_issue(secured_nats: tuple[str, dict[str, str]], streams: None) -> None:
    url, passwords = secured_nats
    nc = await _as(url, passwords, "builder")
    try:
        js = nc.jetstream()
        ack = await js.publish(SUBJECTS.launch_log("l1"), b"a log line")
        assert ack.stream == SUBJECTS.events_stream
        await js.publish(SUBJECTS.commands(StartServer), b"{}")
        with pytest.raises((NoStreamResponseError, asyncio.TimeoutError, nats.errors.TimeoutError)):
            await js.publish(SUBJECTS.commands(ResolveRef), b"{}", timeout=1)
        await asyncio.sleep(0.2)
        assert any("permissions violation" in str(e).lower() for e in nc._test_errors)  # type: ignore[attr-defined]
    finally:
        await nc.close()


@pytest.mark.slow
async def test_the_gateway_issues_resolves_and_reads_events_but_writes_no_build_log(secured_nats: tuple[str, dict[str, str]], streams: None) -> None:
    url, passwords = secured_nats
    builder = await _as(url, passwords, "builder")
    await builder.jetstream().publish(SUBJECTS.launch_log("l3"), b"a log line")
    await builder.close()
    nc = await _as(url, passwords, "gateway")
    try:
        js = nc.jetstream()
        await js.publish(SUBJECTS.commands(ResolveRef), b"{}")
        with pytest.raises((NoStreamResponseError, asyncio.TimeoutError, nats.errors.TimeoutError)):
            await js.publish(SUBJECTS.launch_log("l2"), b"forged log line", timeout=1)
        with pytest.raises((NoStreamResponseError, asyncio.TimeoutError, nats.errors.TimeoutError)):
            await js.publish(SUBJECTS.commands(BuildImage), b"{}", timeout=1)
        sub = await js.subscribe(SUBJECTS.launch_all("l3"), ordered_consumer=True)
        msg = await sub.next_msg(timeout=5)
        assert msg.data == b"a log line"
        await sub.unsubscribe()
    finally:
        await nc.close()
