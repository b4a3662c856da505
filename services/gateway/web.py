"""The web UI: home page with the launch form, loading page with the live log, about page.

Pages are small templates filled on the server; the front end is a few hundred
lines of hand-written CSS and JavaScript served from static/ (nothing is
fetched from a CDN at run time).
"""

from __future__ import annotations

import html
import json
import urllib.parse
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from string import Template
from typing import Any, Mapping

from aiohttp import web

from services.runtime.settings import Settings

from .app import STATE_KEY, parse_build_path

__all__ = ["add_web_routes", "PROVIDER_FORMS", "url_path_from_query"]

_HERE = Path(__file__).parent
_TEMPLATES = _HERE / "templates"
_STATIC = _HERE / "static"

# How the home page's form turns what a person types into a provider spec.
PROVIDER_FORMS: dict[str, dict[str, Any]] = {
    "gh": {"display": "GitHub", "label": "GitHub repository name or URL", "placeholder": "owner/repository or https://github.com/owner/repository", "ref": True, "url_encode": False},
    "gist": {"display": "Gist", "label": "Gist ID (username/gistId) or URL", "placeholder": "username/gistId or https://gist.github.com/username/gistId", "ref": True, "url_encode": False},
    "gl": {"display": "GitLab.com", "label": "GitLab.com repository or URL", "placeholder": "group/project or https://gitlab.com/group/subgroup/project", "ref": True, "url_encode": True},
    "git": {"display": "Git repository", "label": "Arbitrary git repository URL", "placeholder": "https://example.org/path/to/repository.git", "ref": True, "url_encode": True, "keep_git_suffix": True},
    "zenodo": {"display": "Zenodo DOI", "label": "Zenodo DOI", "placeholder": "10.5281/zenodo.3242074", "ref": False, "url_encode": False},
    "figshare": {"display": "Figshare DOI", "label": "Figshare DOI", "placeholder": "10.6084/m9.figshare.9782777.v1", "ref": False, "url_encode": False},
    "hydroshare": {"display": "HydroShare resource", "label": "HydroShare resource id or URL", "placeholder": "b8f6eae9d89241cf8b5904033460af61", "ref": False, "url_encode": False},
    "dataverse": {"display": "Dataverse DOI", "label": "Dataverse DOI", "placeholder": "10.7910/DVN/TJCLKP", "ref": False, "url_encode": False},
    "ckan": {"display": "CKAN dataset", "label": "CKAN dataset URL", "placeholder": "https://demo.ckan.org/dataset/my-dataset", "ref": False, "url_encode": True},
    "doi": {"display": "DOI", "label": "DOI (resolved to its repository)", "placeholder": "10.5281/zenodo.3242074", "ref": False, "url_encode": False},
}


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


def _page(request: web.Request, title: str, content: str, scripts: str = "") -> web.Response:
    settings: Settings = request.app[STATE_KEY].settings  # type: ignore[attr-defined]
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


async def home(request: web.Request) -> web.Response:
    settings: Settings = request.app[STATE_KEY].settings  # type: ignore[attr-defined]
    enabled = [p for p in PROVIDER_FORMS if p in settings.providers.enabled]
    options = "".join(f'<option value="{_esc(p)}">{_esc(PROVIDER_FORMS[p]["display"])}</option>' for p in enabled)
    github, gist, gitlab = (u.rstrip("/") + "/" for u in (settings.providers.github_url, settings.providers.gist_url, settings.providers.gitlab_url))
    providers = {}
    for p in enabled:
        form = dict(PROVIDER_FORMS[p])
        form["default_ref"] = "HEAD"
        form["strip_prefix"] = {"gh": github, "gist": gist, "gl": gitlab}.get(p, "")
        providers[p] = form
    badge_base = settings.gateway.badge_base_url or _absolute_base(request, settings)
    config = {"base": _absolute_base(request, settings), "badge_base": badge_base if badge_base.endswith("/") else badge_base + "/", "providers": providers}
    content = _template("home.html").substitute(base=_esc(_base(settings)), provider_options=options)
    # JSON inside <script type="application/json"> must not be able to close the tag.
    config_json = json.dumps(config).replace("</", "<\\/")
    scripts = f'<script id="providers-config" type="application/json">{config_json}</script><script src="{_esc(_base(settings))}static/home.js"></script>'
    return _page(request, "binderflow: launch a repository", content, scripts)


async def loading(request: web.Request) -> web.Response:
    settings: Settings = request.app[STATE_KEY].settings  # type: ignore[attr-defined]
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
    """A signed build token for the loading page's event stream, when build tokens are on."""
    settings: Settings = request.app[STATE_KEY].settings  # type: ignore[attr-defined]
    if not settings.gateway.build_token_secret:
        return ""
    try:
        from .tokens import make_build_token
    except ImportError:
        return ""
    import time

    origin = request.headers.get("Origin") or request.host
    return make_build_token(settings.gateway.build_token_secret, provider_spec, origin, settings.gateway.build_token_expires_seconds, time.time())


async def about(request: web.Request) -> web.Response:
    settings: Settings = request.app[STATE_KEY].settings  # type: ignore[attr-defined]
    providers = ", ".join(PROVIDER_FORMS[p]["display"] for p in PROVIDER_FORMS if p in settings.providers.enabled)
    about_message = settings.gateway.about_message
    content = _template("about.html").substitute(
        about_message=f'<div class="about-message">{about_message}</div>' if about_message else "",
        version=_esc(_version()),
        providers=_esc(providers),
    )
    return _page(request, "About binderflow", content)


def add_web_routes(app: web.Application) -> None:
    """Register the web UI's pages and static assets on the gateway app."""
    app.router.add_get("/", home)
    app.router.add_get("/about", about)
    app.router.add_get("/v2/{tail:.+}", loading)
    app.router.add_static("/static/", _STATIC, append_version=False)
