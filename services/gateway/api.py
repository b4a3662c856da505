"""BinderHub's HTTP API beside /build: badges, /_config, /api/repoproviders, /versions, /repo redirects."""

from __future__ import annotations

from aiohttp import web

__all__ = ["add_api_routes"]


def add_api_routes(app: web.Application) -> None:
    """Register BinderHub's API routes on the gateway app."""
