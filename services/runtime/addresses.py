"""The one address policy: which network addresses binderflow fetches repositories and data from.

Repository URLs and redirect targets are hostile: a spec naming a host that
resolves into this Binder's own networks would let strangers reach its
broker, its metadata service or its neighbours (SSRF). Only globally routable
unicast addresses are allowed, judged after unwrapping every IPv6 form that
carries an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo), plus whatever networks the
operator blocks on top. Host names the operator lists in `allowed_hosts` (a
company Git server) are trusted as they are.

The resolver's git provider, the builder's git fetch and its data downloads
all ask this module, and connect to the addresses it checked: git is given
them (`http.curloptResolve`, or the address itself for git://), aiohttp gets
them from `GuardedResolver`, so a name cannot resolve one way for the check
and another for the connection (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["AddressPolicy", "AddressRefused", "embedded_ipv4", "is_public_address", "GuardedResolver"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


class AddressRefused(Exception):
    """A host resolves to an address the policy refuses (or does not resolve); the message says which."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo client), or None."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:
        # IPv4-compatible ::a.b.c.d (deprecated; Linux may still route it to a.b.c.d).
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _is_public_ip(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address, also once unwrapped from IPv6. Pure.

    An address that is not an IP address at all is not public.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            return _is_public_ip(inner)
    return _is_public_ip(ip)


@dataclass(frozen=True)
class AddressPolicy:
    """Where fetches may connect: public addresses, minus `blocked_networks`; `allowed_hosts` trusted by name ("*": all)."""

    blocked_networks: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    _nets: tuple[Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_nets", tuple(ipaddress.ip_network(n, strict=False) for n in self.blocked_networks))
        object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))

    def trusts(self, host: str) -> bool:
        """Whether `host` is one the operator allowed by name (no address check)."""
        return "*" in self.allowed_hosts or host.lower().rstrip(".") in self.allowed_hosts

    def is_blocked(self, address: str) -> bool:
        """Whether connecting to `address` is refused."""
        if not is_public_address(address):
            return True
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            candidates.append(inner)
        return any(c.version == net.version and c in net for c in candidates for net in self._nets)

    def check_addresses(self, host: str, addresses: Iterable[str]) -> list[str]:
        """The addresses, once each, if the policy allows every one; AddressRefused naming the first it refuses."""
        checked = list(dict.fromkeys(addresses))
        if not checked:
            raise AddressRefused(f"the host {host} does not resolve")
        if self.trusts(host):
            return checked
        for address in checked:
            if self.is_blocked(address):
                raise AddressRefused(f"the host {host} resolves to {address}, an address in a network this Binder does not fetch from")
        return checked

    async def resolve(self, host: str, port: int) -> list[str]:
        """`host`'s addresses, checked (see check_addresses); AddressRefused otherwise."""
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            raise AddressRefused(f"the host {host} does not resolve") from None
        return self.check_addresses(host, (str(info[4][0]) for info in infos))


class GuardedResolver(AbstractResolver):
    """aiohttp's name resolution under an AddressPolicy: a connection goes only to checked addresses.

    `trusted_hosts` (the configured data sites) are resolved without the check,
    as the operator named them. A refused name raises OSError, which aiohttp
    reports as a connection error. Address literals do not reach a resolver:
    check them before connecting (AddressPolicy.check_addresses).
    """

    def __init__(self, policy: AddressPolicy, trusted_hosts: Iterable[str] = ()) -> None:
        self._policy = policy
        self._trusted = {h.lower() for h in trusted_hosts}
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host.lower() in self._trusted:
            return results
        try:
            self._policy.check_addresses(host, (r["host"] for r in results))
        except AddressRefused as exc:
            # With an errno and a text, aiohttp shows the reason in its connection error.
            raise OSError(errno.EHOSTUNREACH, str(exc)) from None
        return results

    async def close(self) -> None:
        await self._inner.close()
