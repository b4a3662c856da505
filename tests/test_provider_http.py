"""The providers' HTTP helper: the ETag cache (pure, with a fake clock) and the client's
safety rules against small local servers on 127.0.0.1."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp import web

from services.resolver.providers.base import ProviderError
from services.resolver.providers.http import ApiClient, ResponseCache

from .harness import free_port


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_expire_after_max_age_and_refresh_on_304() -> None:
    clock = FakeClock()
    cache = ResponseCache(60, clock=clock)
    cache.put("u", 'W/"1"', b"body")
    clock.now += 59
    assert cache.get("u") is not None and cache.get("u").body == b"body"  # type: ignore[union-attr]
    cache.refresh("u")
    clock.now += 59
    assert cache.get("u") is not None
    clock.now += 1
    assert cache.get("u") is None
    assert len(cache) == 0


def test_cache_keeps_only_the_most_recently_used_entries_and_needs_an_etag() -> None:
    cache = ResponseCache(60, max_entries=2, clock=FakeClock())
    cache.put("a", "1", b"a")
    cache.put("b", "2", b"b")
    cache.get("a")
    cache.put("c", "3", b"c")
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    cache.put("d", "", b"no etag")
    assert cache.get("d") is None


def test_cache_with_zero_max_age_is_disabled() -> None:
    cache = ResponseCache(0)
    assert not cache.enabled
    cache.put("u", "1", b"x")
    assert cache.get("u") is None


class Recorder:
    """A tiny server that records requests and answers as told."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.redirect_to = ""
        self.body = b"{}"
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        if self.redirect_to:
            raise web.HTTPMovedPermanently(self.redirect_to)
        return web.Response(body=self.body, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Recorder, Recorder]]:
    one, two = Recorder(), Recorder()
    await one.start()
    await two.start()
    yield one, two
    await one.stop()
    await two.stop()


async def test_redirect_to_another_host_is_not_followed_so_credentials_stay_home(servers: tuple[Recorder, Recorder]) -> None:
    api, elsewhere = servers
    api.redirect_to = f"{elsewhere.url}/steal"
    client = ApiClient("the test API", headers={"Authorization": "token s3cret"}, timeout_seconds=5)
    try:
        with pytest.raises(ProviderError, match="redirected to another host"):
            await client.get(f"{api.url}/repos/a/b")
    finally:
        await client.aclose()
    assert api.seen[0]["Authorization"] == "token s3cret"
    assert elsewhere.seen == []


async def test_redirect_within_the_api_is_followed(servers: tuple[Recorder, Recorder]) -> None:
    api, _ = servers
    api.redirect_to = f"{api.url}/moved"
    client = ApiClient("the test API", timeout_seconds=5)
    try:
        with pytest.raises(ProviderError, match="redirected too many times"):
            await client.get(f"{api.url}/start")  # redirects to itself forever
    finally:
        await client.aclose()
    assert len(api.seen) == 4


async def test_oversized_answers_and_non_json_bodies_are_refused(servers: tuple[Recorder, Recorder]) -> None:
    api, _ = servers
    api.body = b"x" * (2 * 1024 * 1024 + 1)
    client = ApiClient("the test API", timeout_seconds=5, max_body_bytes=2 * 1024 * 1024)
    try:
        with pytest.raises(ProviderError, match="larger than 2 MiB"):
            await client.get(f"{api.url}/big")
        api.body = b"<html>not json</html>"
        resp = await client.get(f"{api.url}/html")
        with pytest.raises(ProviderError, match="not JSON"):
            resp.json()
    finally:
        await client.aclose()


async def test_unreachable_api_fails_with_a_clear_message() -> None:
    client = ApiClient("the test API", timeout_seconds=5)
    try:
        with pytest.raises(ProviderError, match="Could not reach the test API"):
            await client.get(f"http://127.0.0.1:{free_port()}/nothing-listens")
    finally:
        await client.aclose()
