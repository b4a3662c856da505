"""The one address policy (services/runtime/addresses.py): public addresses only, however written,
and aiohttp connects only to addresses it checked."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.runtime.addresses import AddressPolicy, AddressRefused, GuardedResolver, embedded_ipv4, is_public_address


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "198.18.0.1",
        "224.0.0.1", "240.0.0.1", "255.255.255.255",
        "::", "::1", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::", "2002:c0a8:101::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "not-an-address",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert not is_public_address(address)
    assert AddressPolicy().is_blocked(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address) and not AddressPolicy().is_blocked(address)


def test_the_ipv4_inside_ipv6_forms_is_found() -> None:
    import ipaddress

    assert str(embedded_ipv4(ipaddress.IPv6Address("2002:7f00:1::"))) == "127.0.0.1"
    assert str(embedded_ipv4(ipaddress.IPv6Address("64:ff9b::a00:1"))) == "10.0.0.1"
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1111")) is None


def test_a_name_with_one_refused_address_is_refused_whole() -> None:
    with pytest.raises(AddressRefused, match="resolves to 10.0.0.1"):
        AddressPolicy().check_addresses("mixed.example", ["8.8.8.8", "10.0.0.1"])
    assert AddressPolicy(allowed_hosts=("Mixed.Example",)).check_addresses("mixed.example.", ["10.0.0.1"]) == ["10.0.0.1"]


async def test_aiohttp_under_the_guarded_resolver_refuses_a_name_that_resolves_inside_and_allows_a_trusted_one() -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="inside")

    app = web.Application()
    app.router.add_get("/", hello)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = f"http://localhost:{server.port}/"
        guarded = aiohttp.TCPConnector(resolver=GuardedResolver(AddressPolicy()))
        async with aiohttp.ClientSession(connector=guarded) as session:
            with pytest.raises(aiohttp.ClientConnectorError, match="does not fetch from"):
                await session.get(url)
        trusting = aiohttp.TCPConnector(resolver=GuardedResolver(AddressPolicy(), trusted_hosts=["localhost"]))
        async with aiohttp.ClientSession(connector=trusting) as session:
            async with session.get(url) as resp:
                assert await resp.text() == "inside"
    finally:
        await server.close()
