"""The gateway's URLs: what a request path names, and where this Binder is reached. Pure."""

from __future__ import annotations

import urllib.parse

from aiohttp import web

from services.runtime.settings import GatewaySettings

__all__ = ["parse_provider_path", "base_path", "link_base", "absolute_base"]


def parse_provider_path(raw_path: str, prefix: str) -> tuple[str, str] | None:
    """(provider, spec) from a raw, still percent-encoded request path under `prefix`
    ("/build/", "/v2/", "/logs/"), or None.

    The spec keeps its percent-encoding: providers decode their own parts (a git
    URL in a spec is itself percent-encoded, and '%2F' must not become '/').
    """
    if not raw_path.startswith(prefix):
        return None
    rest = raw_path[len(prefix):]
    provider, sep, spec = rest.partition("/")
    if not sep:
        return (urllib.parse.unquote(provider), "")
    return urllib.parse.unquote(provider), spec


def base_path(gateway: GatewaySettings) -> str:
    """The path this Binder is served under, ending in '/': public_url's, or the root."""
    public = gateway.public_url
    if not public:
        return "/"
    path = urllib.parse.urlsplit(public).path or "/"
    return path if path.endswith("/") else path + "/"


def link_base(gateway: GatewaySettings) -> str:
    """What pages put before their links, ending in '/': public_url, else "/" (same site)."""
    public = gateway.public_url
    if not public:
        return "/"
    return public if public.endswith("/") else public + "/"


def absolute_base(request: web.Request, gateway: GatewaySettings) -> str:
    """This Binder's base URL with '/': public_url, else the request's scheme and Host.

    BinderHub's binder_launch_host.
    """
    public = gateway.public_url
    if public:
        return public if public.endswith("/") else public + "/"
    return f"{request.scheme}://{request.host}/"
