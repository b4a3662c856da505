"""BinderHub's HTTP API beside /build: /_config, /api/repoproviders, /versions and the /repo redirect."""

from __future__ import annotations

import urllib.parse
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from services.runtime.settings import Settings

from .paths import base_path
from .provider_config import legacy_config, repoproviders_config
from .state import state_of

__all__ = ["add_api_routes", "add_legacy_routes", "versions_body", "legacy_redirect_location", "package_version"]


def package_version(name: str) -> str:
    """The installed version of distribution `name`, or "unknown"."""
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def versions_body(settings: Settings) -> dict[str, Any]:
    """/versions: BinderHub's keys, filled with what actually runs here."""
    own = package_version("binderflow")
    executor = settings.builder.executor
    builder_info = {"executor": executor, "uv-version": package_version("uv")}
    return {
        # BinderHub reports its repo2docker image here; binderflow builds with uv.
        "builder": f"binderflow {executor} executor (uv {builder_info['uv-version']})",
        "builder_info": builder_info,
        # Clients read this key; it is binderflow's own version, not a BinderHub release.
        "binderhub": f"binderflow {own}",
        "binderflow": own,
    }


def legacy_redirect_location(raw_path: str, base: str = "/") -> str | None:
    """Where BinderHub sends the original Binder's `/repo/<user>/<repo>[/<path>]`, or None if malformed.

    To `<base>v2/gh/<user>/<repo>/master`, with a non-empty path as `?urlpath=`.
    User and repository keep their percent-encoding.
    """
    prefix = "/repo/"
    if not raw_path.startswith(prefix):
        return None
    user, _, rest = raw_path[len(prefix):].partition("/")
    repo, sep, path = rest.partition("/")
    if not user or not repo:
        return None
    base = base if base.endswith("/") else base + "/"
    location = f"{base}v2/gh/{user}/{repo}/master"
    urlpath = "/" + path if sep else ""
    if urlpath.strip("/"):
        location += "?" + urllib.parse.urlencode({"urlpath": urllib.parse.unquote(urlpath)})
    return location


async def legacy_repo(request: web.Request) -> web.Response:
    location = legacy_redirect_location(request.rel_url.raw_path, base_path(state_of(request).settings.gateway))
    if location is None:
        raise web.HTTPNotFound(text="Not a Binder repository link: expected /repo/<user>/<repository>\n")
    # Set as is: aiohttp's HTTPFound would re-encode the query (%2F back to /).
    return web.Response(status=302, headers={"Location": location})


async def versions(request: web.Request) -> web.Response:
    return web.json_response(versions_body(state_of(request).settings))


async def config(request: web.Request) -> web.Response:
    return web.json_response(legacy_config(state_of(request).settings.providers))


async def repoproviders(request: web.Request) -> web.Response:
    return web.json_response(repoproviders_config(state_of(request).settings.providers))


def add_api_routes(app: web.Application) -> None:
    """The API every mode serves (API-only mode included)."""
    app.router.add_get("/_config", config)
    app.router.add_get("/api/repoproviders", repoproviders)
    app.router.add_get("/versions", versions)


def add_legacy_routes(app: web.Application) -> None:
    """The original Binder's /repo links (UI only: they lead to a loading page)."""
    app.router.add_get("/repo/{tail:.+}", legacy_repo)
