"""Who may start a launch, by BinderHub's rules. Pure: requests' parts in, a verdict out.

- `admit_build_request`: build tokens, API-only mode and build-only launches.
- `parse_ban_networks` / `banned_by`: BinderHub's `ban_networks`.
- `is_api_only`: whether the gateway serves an API and no web UI.

The I/O around these (the /build handler, the ban middleware) lives in
launches.py and bans.py.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping

from services.runtime.settings import GatewaySettings, SettingsError

from .tokens import BuildTokenError, check_build_token

__all__ = ["Admitted", "Refused", "admit_build_request", "is_api_only", "Network", "parse_ban_networks", "banned_by"]


@dataclass(frozen=True)
class Admitted:
    """A /build request may go ahead."""

    build_only: bool = False
    have_build_token: bool = False


@dataclass(frozen=True)
class Refused:
    """A /build request is refused before anything is published: one `failed` event says why."""

    status_code: int
    message: str


def is_api_only(gateway: GatewaySettings) -> bool:
    """BinderHub's API-only mode (enable_api_only_mode, implied by require_build_only):
    /build with build_only allowed, and no web UI, badges or links into one."""
    return gateway.enable_api_only_mode or gateway.require_build_only


def admit_build_request(
    gateway: GatewaySettings, provider: str, raw_spec: str, query: Mapping[str, str], origin: str, now: float
) -> Admitted | Refused:
    """Whether a /build request may start a launch, by BinderHub's rules.

    - `build_token`: checked when present (audience "<provider>/<raw spec>", the
      spec exactly as in the URL, and the request's origin); an invalid one is
      refused with 403 "Invalid build token". Without one the request goes ahead
      unless `require_build_token` is set (binderflow's addition; BinderHub only
      rate-limits such requests). Tokens are off when no secret is configured.
    - `build_only=true` needs the API-only mode (`enable_api_only_mode`, which
      `require_build_only` implies); otherwise 400, with BinderHub's message.
      `require_build_only` (binderflow's addition) refuses requests without it.
    """
    token = query.get("build_token") or ""
    have_token = False
    if token and gateway.build_token_secret:
        try:
            check_build_token(token, gateway.build_token_secret, f"{provider}/{raw_spec}", origin, now)
        except BuildTokenError as exc:
            return Refused(403, str(exc))
        have_token = True
    if gateway.require_build_token and not have_token:
        if not gateway.build_token_secret:
            return Refused(500, "This Binder requires build tokens but has no gateway.build_token_secret to check them with")
        return Refused(
            403,
            f"A build token is required to build here: open the launch link v2/{provider}/{raw_spec} on this Binder, which provides one",
        )
    build_only = (query.get("build_only") or "").strip().lower() == "true"
    if build_only and not is_api_only(gateway):
        return Refused(
            400,
            "Building but not launching is not permitted when the API only mode was not enabled "
            "(gateway.enable_api_only_mode is false)",
        )
    if gateway.require_build_only and not build_only:
        return Refused(
            400,
            "Launching is not permitted here: this Binder only builds (gateway.require_build_only is true); "
            "ask for build_only=true",
        )
    return Admitted(build_only=build_only, have_build_token=have_token)


# -- network bans ------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ban_networks(ban_networks: Mapping[str, str]) -> list[tuple[Network, str]]:
    """gateway.ban_networks ({CIDR: message}) parsed; SettingsError naming the bad entry otherwise."""
    parsed = []
    for cidr, message in ban_networks.items():
        try:
            network = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise SettingsError(
                f"invalid setting 'gateway.ban_networks' (or BINDERFLOW_GATEWAY_BAN_NETWORKS): {cidr!r} is not a CIDR network"
            ) from None
        parsed.append((network, message))
    return parsed


def banned_by(address: str | None, networks: list[tuple[Network, str]]) -> tuple[Network, str] | None:
    """The (network, message) of the first banned network holding `address`, or None.

    An IPv4 client seen through an IPv6 socket (::ffff:a.b.c.d) is matched as IPv4.
    An address that is not an IP (a Unix socket peer) is never banned.
    """
    if not address or not networks:
        return None
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    for network, message in networks:
        if any(candidate.version == network.version and candidate in network for candidate in candidates):
            return network, message
    return None
