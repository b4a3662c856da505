"""The gateway's aiohttp application: which routes it serves, in which mode.

Each room registers its own routes: launches (`/build`, `/launches/<id>/events`),
build logs, health and metrics, BinderHub's API, and (outside API-only mode)
the badges, the /repo redirect and the web UI. BinderHub's network ban wraps
them all.
"""

from __future__ import annotations

from aiohttp import web

from .admission import is_api_only, parse_ban_networks
from .api import add_api_routes, add_legacy_routes
from .badges import add_badge_routes
from .bans import ban_middleware
from .health import add_health_routes
from .launches import add_launch_routes
from .logs import add_log_routes
from .state import STATE, GatewayState
from .web import add_web_routes

__all__ = ["make_app"]


def make_app(state: GatewayState) -> web.Application:
    """The gateway's application; SettingsError when `gateway.ban_networks` holds a bad network."""
    gateway = state.settings.gateway
    networks = parse_ban_networks(gateway.ban_networks)
    app = web.Application(middlewares=[ban_middleware(networks)] if networks else [])
    app[STATE] = state
    add_launch_routes(app)
    add_log_routes(app)
    add_health_routes(app)
    add_api_routes(app)
    if not is_api_only(gateway):
        # BinderHub's API-only mode has no UI: no pages, badges or links into one.
        add_badge_routes(app)
        add_legacy_routes(app)
        add_web_routes(app)
    return app
