"""The web UI: home page with the launch form, loading page with the live log, about page.

Pages are small templates filled on the server; the front end is a few hundred
lines of hand-written CSS and JavaScript served from static/ (nothing is
fetched from a CDN at run time). Providers are described by api.PROVIDERS, the
same table /_config and /api/repoproviders serve. In API-only mode there is no
UI: these routes are not registered, so the pages answer 404 as BinderHub's do.
"""

from __future__ import annotations

import html
import json
import time
import urllib.parse
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from string import Template
from typing import Any, Mapping

from aiohttp import web

from services.runtime.settings import ProviderSettings, Settings

from .api import enabled_providers, is_api_only, provider_site_url
from .app import STATE_KEY, parse_build_path
from .tokens import make_build_token, token_origin

__all__ = ["add_web_routes", "home_form_providers", "url_path_from_query"]

_HERE = Path(__file__).parent
_TEMPLATES = _HERE / "templates"
_STATIC = _HERE / "static"


def _version() -> str:
    try:
        return version("binderflow")
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=None)
def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text())


def _esc(value: str) -> str:
    return html.escape(value, quote=True)


def _base(settings: Settings) -> str:
    public = settings.gateway.public_url
    return public if public.endswith("/") else (public + "/" if public else "/")


def _absolute_base(request: web.Request, settings: Settings) -> str:
    public = settings.gateway.public_url
    if public:
        return public if public.endswith("/") else public + "/"
    return f"{request.scheme}://{request.host}/"


def _settings(request: web.Request) -> Settings:
    return request.app[STATE_KEY].settings  # type: ignore[attr-defined,no-any-return]


def _page(request: web.Request, title: str, content: str, scripts: str = "") -> web.Response:
    settings = _settings(request)
    banner = settings.gateway.banner_message
    body = _template("page.html").substitute(
        title=_esc(title),
        base=_esc(_base(settings)),
        # Banner and about messages are HTML written by the operator (trusted config).
        banner=f'<div class="banner">{banner}</div>' if banner else "",
        content=content,
        version=_esc(_version()),
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


def home_form_providers(providers: ProviderSettings) -> dict[str, dict[str, Any]]:
    """How the home page's form (static/home.js) turns what a person types into each
    enabled provider's spec, keyed by prefix in the order settings list them."""
    form: dict[str, dict[str, Any]] = {}
    for info in enabled_providers(providers):
        site = provider_site_url(info.prefix, providers)
        form[info.prefix] = {
            "display": info.display_name,
            "label": info.repo_label,
            "placeholder": info.repo_placeholder,
            "ref": info.ref_enabled,
            "ref_label": info.ref_text,
            "default_ref": "HEAD",
            "url_encode": info.url_encode,
            "keep_git_suffix": info.keeps_git_suffix,
            # A pasted web URL of the provider's site is cut down to the repository.
            "strip_prefix": site.rstrip("/") + "/" if site else "",
        }
    return form


async def home(request: web.Request) -> web.Response:
    settings = _settings(request)
    providers = home_form_providers(settings.providers)
    options = "".join(f'<option value="{_esc(p)}">{_esc(form["display"])}</option>' for p, form in providers.items())
    badge_base = settings.gateway.badge_base_url or _absolute_base(request, settings)
    config = {"base": _absolute_base(request, settings), "badge_base": badge_base if badge_base.endswith("/") else badge_base + "/", "providers": providers}
    content = _template("home.html").substitute(base=_esc(_base(settings)), provider_options=options)
    # JSON inside <script type="application/json"> must not be able to close the tag.
    config_json = json.dumps(config).replace("</", "<\\/")
    scripts = f'<script id="providers-config" type="application/json">{config_json}</script><script src="{_esc(_base(settings))}static/home.js"></script>'
    return _page(request, "binderflow: launch a repository", content, scripts)


async def loading(request: web.Request) -> web.Response:
    settings = _settings(request)
    parsed = parse_build_path(request.rel_url.raw_path, "/v2/")
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
        version=_esc(_version()),
        providers=_esc(providers),
    )
    return _page(request, "About binderflow", content)


def add_web_routes(app: web.Application) -> None:
    """Register the web UI's pages and static assets on the gateway app (none in API-only mode)."""
    if is_api_only(app[STATE_KEY].settings.gateway):  # type: ignore[attr-defined]
        return
    app.router.add_get("/", home)
    app.router.add_get("/about", about)
    app.router.add_get("/v2/{tail:.+}", loading)
    app.router.add_static("/static/", _STATIC, append_version=False)
