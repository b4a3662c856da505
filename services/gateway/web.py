"""The web UI: home page with the launch form, loading page with the live log, about page.

Pages are small templates filled on the server; the front end is a few hundred
lines of hand-written CSS and JavaScript served from static/ (nothing is
fetched from a CDN at run time). Providers are described by the catalogue
(schemas.providers), the same table /_config and /api/repoproviders serve. In
API-only mode there is no UI: app.py does not register these routes, so the
pages answer 404 as BinderHub's do.
"""

from __future__ import annotations

import html
import json
import time
import urllib.parse
from functools import lru_cache
from pathlib import Path
from string import Template
from typing import Mapping

from aiohttp import web

from services.runtime.settings import Settings

from .api import package_version
from .paths import absolute_base, link_base, parse_provider_path
from .provider_config import enabled_providers, home_form_providers
from .state import state_of
from .tokens import make_build_token, token_origin

__all__ = ["add_web_routes", "url_path_from_query"]

_HERE = Path(__file__).parent
_TEMPLATES = _HERE / "templates"
_STATIC = _HERE / "static"


@lru_cache(maxsize=None)
def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text())


def _esc(value: str) -> str:
    return html.escape(value, quote=True)


def _base(settings: Settings) -> str:
    return link_base(settings.gateway)


def _settings(request: web.Request) -> Settings:
    return state_of(request).settings


def _page(request: web.Request, title: str, content: str, scripts: str = "") -> web.Response:
    settings = _settings(request)
    banner = settings.gateway.banner_message
    body = _template("page.html").substitute(
        title=_esc(title),
        base=_esc(_base(settings)),
        # Banner and about messages are HTML written by the operator (trusted config).
        banner=f'<div class="banner">{banner}</div>' if banner else "",
        content=content,
        version=_esc(package_version("binderflow")),
        scripts=scripts,
    )
    return web.Response(text=body, content_type="text/html")


def url_path_from_query(query: Mapping[str, str]) -> str:
    """The server path the ready redirect opens, from BinderHub's query parameters.

    `urlpath` is used as given; `labpath` (and the legacy `filepath`) open a file
    in JupyterLab, which is what every server here runs.
    """
    urlpath = (query.get("urlpath") or "").lstrip("/")
    if urlpath:
        return urlpath
    for key in ("labpath", "filepath"):
        path = (query.get(key) or "").lstrip("/")
        if path:
            return f"lab/tree/{path}"
    return ""


async def home(request: web.Request) -> web.Response:
    settings = _settings(request)
    providers = home_form_providers(settings.providers)
    options = "".join(f'<option value="{_esc(p)}">{_esc(form["display"])}</option>' for p, form in providers.items())
    badge_base = settings.gateway.badge_base_url or absolute_base(request, settings.gateway)
    config = {"base": absolute_base(request, settings.gateway), "badge_base": badge_base if badge_base.endswith("/") else badge_base + "/", "providers": providers}
    content = _template("home.html").substitute(base=_esc(_base(settings)), provider_options=options)
    # JSON inside <script type="application/json"> must not be able to close the tag.
    config_json = json.dumps(config).replace("</", "<\\/")
    scripts = f'<script id="providers-config" type="application/json">{config_json}</script><script src="{_esc(_base(settings))}static/home.js"></script>'
    return _page(request, "binderflow: launch a repository", content, scripts)


async def loading(request: web.Request) -> web.Response:
    settings = _settings(request)
    parsed = parse_provider_path(request.rel_url.raw_path, "/v2/")
    assert parsed is not None
    provider, spec = parsed
    spec = spec.rstrip("/")
    if provider not in settings.providers.enabled or not spec:
        message = f"No provider found for prefix {provider}" if provider not in settings.providers.enabled else "The link names no repository"
        content = f'<section class="card"><h1>Not found</h1><p class="error">{_esc(message)}</p></section>'
        resp = _page(request, "Not found", content)
        resp.set_status(404)
        return resp
    build_url = f"{_base(settings)}build/{provider}/{spec}"
    token = _build_token(request, f"{provider}/{spec}")
    if token:
        build_url += f"?build_token={token}"
    content = _template("loading.html").substitute(
        build_url=_esc(build_url),
        url_path=_esc(url_path_from_query(request.query)),
        display_spec=_esc(f"{provider}/{urllib.parse.unquote(spec)}"),
    )
    scripts = f'<script src="{_esc(_base(settings))}static/loading.js"></script>'
    return _page(request, f"Binder: {provider}/{spec}", content, scripts)


def _build_token(request: web.Request, provider_spec: str) -> str:
    """A build token for the loading page's event stream, when build tokens are on ("" otherwise).

    It is bound to the origin /build will see (token_origin of the same headers):
    the page's own EventSource request is same-origin, so it carries this Host
    and, like this page's request, no Origin header.
    """
    gateway = _settings(request).gateway
    if not gateway.build_token_secret:
        return ""
    origin = token_origin(request.headers.get("Origin"), request.host)
    return make_build_token(gateway.build_token_secret, provider_spec, origin, gateway.build_token_expires_seconds, time.time())


async def about(request: web.Request) -> web.Response:
    settings = _settings(request)
    providers = ", ".join(info.display_name for info in enabled_providers(settings.providers))
    about_message = settings.gateway.about_message
    content = _template("about.html").substitute(
        about_message=f'<div class="about-message">{about_message}</div>' if about_message else "",
        version=_esc(package_version("binderflow")),
        providers=_esc(providers),
    )
    return _page(request, "About binderflow", content)


def add_web_routes(app: web.Application) -> None:
    """Register the web UI's pages and static assets on the gateway app."""
    app.router.add_get("/", home)
    app.router.add_get("/about", about)
    app.router.add_get("/v2/{tail:.+}", loading)
    app.router.add_static("/static/", _STATIC, append_version=False)
