"""BinderHub's HTTP API beside /build: badges, /_config, /api/repoproviders, /versions, /repo redirects.

Also the network ban that BinderHub applies to every request (`ban_networks`),
as a middleware, and the pure helpers these use: the provider table (PROVIDERS,
which the web UI's form reads too), the repository URL BinderHub reports for a
spec, CIDR matching, and whether the gateway is in API-only mode.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import urllib.parse
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

from services.runtime.settings import GatewaySettings, ProviderSettings, Settings, SettingsError

from .app import STATE_KEY, failed_event_response

__all__ = [
    "add_api_routes",
    "ProviderInfo",
    "PROVIDERS",
    "enabled_providers",
    "is_api_only",
    "provider_info",
    "provider_site_url",
    "provider_name",
    "repoproviders_config",
    "legacy_config",
    "repo_url_for",
    "parse_ban_networks",
    "banned_by",
    "legacy_redirect_location",
    "versions_body",
    "BADGE_SVG",
    "BADGE_LOGO_SVG",
]

log = logging.getLogger(__name__)

_GIT_REF_TEXT = "Git ref (branch, tag, or commit)"


@dataclass(frozen=True)
class ProviderInfo:
    """How one repository provider is described: by the home page's form, /_config,
    /api/repoproviders (BinderHub's display_config) and BinderHub's metrics."""

    prefix: str
    # BinderHub's provider.name: the `provider` label of its build and launch metrics.
    name: str
    display_name: str
    # Regular expression (JavaScript syntax) a spec after "/v2/<prefix>/" must match.
    spec_regex: str
    repo_label: str
    repo_placeholder: str
    # Whether the repository part must be URL-encoded into the spec (git URLs, GitLab paths).
    url_encode: bool
    ref_enabled: bool
    ref_text: str = _GIT_REF_TEXT
    # Whether a pasted repository keeps a trailing ".git" (a git URL is used as given;
    # the home page drops it from "owner/repo.git" on GitHub and the like).
    keeps_git_suffix: bool = False


_DOI_SPEC = r"10\.\d+/.+"

# Every provider binderflow knows, in the order the UI lists them.
PROVIDERS: dict[str, ProviderInfo] = {
    p.prefix: p
    for p in (
        ProviderInfo("gh", "GitHub", "GitHub", r"[^/]+/[^/]+/.+", "GitHub repository name or URL",
                     "owner/repository or https://github.com/owner/repository", False, True),
        ProviderInfo("gist", "Gist", "Gist", r"[^/]+/[^/]+(/[^/]+)?", "Gist ID (username/gistId) or URL",
                     "username/gistId or https://gist.github.com/username/gistId", False, True, "Git commit SHA"),
        ProviderInfo("gl", "GitLab", "GitLab.com", r"[^/]+/.+", "GitLab.com repository or URL",
                     "group/project or https://gitlab.com/group/subgroup/project", True, True),
        ProviderInfo("git", "Git", "Git repository", r"[^/]+/.+", "Arbitrary git repository URL",
                     "https://example.org/path/to/repository.git", True, True, keeps_git_suffix=True),
        ProviderInfo("zenodo", "Zenodo", "Zenodo DOI", _DOI_SPEC, "Zenodo DOI", "10.5281/zenodo.3242074", False, False),
        ProviderInfo("figshare", "Figshare", "Figshare DOI", _DOI_SPEC, "Figshare DOI", "10.6084/m9.figshare.9782777.v1", False, False),
        ProviderInfo("hydroshare", "Hydroshare", "HydroShare resource", r"[^/]+", "HydroShare resource id or URL",
                     "b8f6eae9d89241cf8b5904033460af61", False, False),
        ProviderInfo("dataverse", "Dataverse", "Dataverse DOI", _DOI_SPEC, "Dataverse DOI", "10.7910/DVN/TJCLKP", False, False),
        ProviderInfo("ckan", "CKAN", "CKAN dataset", r".+", "CKAN dataset URL",
                     "https://demo.ckan.org/dataset/my-dataset", True, False),
        ProviderInfo("doi", "DOI", "DOI", _DOI_SPEC, "DOI (resolved to its repository)", "10.5281/zenodo.3242074", False, False),
    )
}


def provider_info(prefix: str) -> ProviderInfo:
    """The description of `prefix`; a plain one for a prefix binderflow does not describe."""
    known = PROVIDERS.get(prefix)
    if known is not None:
        return known
    return ProviderInfo(prefix, prefix, prefix, r".+", "Repository", "", True, True)


def provider_name(prefix: str) -> str:
    """BinderHub's provider.name for a spec prefix ("GitHub", "Git", ...)."""
    return provider_info(prefix).name


def _web_base(url: str) -> str:
    """A configured base URL without its trailing slash."""
    return url.rstrip("/")


def provider_site_url(prefix: str, providers: ProviderSettings) -> str | None:
    """The web site a provider's repositories are pasted from (GitHub, Gist, GitLab), or None."""
    return {"gh": providers.github_url, "gist": providers.gist_url, "gl": providers.gitlab_url}.get(prefix)


def _site_pattern(url: str) -> str:
    """A regular expression for a configured site URL, accepting http or https."""
    parts = urllib.parse.urlsplit(_web_base(url))
    rest = re.escape(parts.netloc + parts.path)
    return f"https?://{rest}" if parts.scheme in ("http", "https") else re.escape(_web_base(url))


def _detect_regexes(prefix: str, providers: ProviderSettings) -> list[str] | None:
    """BinderHub's `regex_detect` (JavaScript syntax): turn a pasted web URL into repo, ref and path."""
    site = provider_site_url(prefix, providers)
    if site is None:
        return None
    base = _site_pattern(site)
    if prefix == "gh":
        return [
            f"^{base}/(?<repo>[^/]+/[^/]+)(/blob/(?<ref>[^/]+)(/(?<filepath>.+))?)?$",
            f"^{base}/(?<repo>[^/]+/[^/]+)(/tree/(?<ref>[^/]+)(/(?<urlpath>.+))?)?$",
        ]
    if prefix == "gist":
        return [f"^{base}/(?<repo>[^/]+/[^/]+)(/(?<ref>[^/]+))?$"]
    return [
        f"^{base}/(?<repo>[^/]+/[^/]+(/[^/-][^/]+)*)(/-/blob/(?<ref>[^/]+)(/(?<filepath>.+))?)?$",
        f"^{base}/(?<repo>[^/]+/[^/]+(/[^/-][^/]+)*)(/-/tree/(?<ref>[^/]+)(/(?<urlpath>.+))?)?$",
    ]


def enabled_providers(providers: ProviderSettings) -> list[ProviderInfo]:
    """The enabled providers' descriptions, once each, in the order settings list them.

    The one list the home page's form, the about page, /_config and
    /api/repoproviders all show.
    """
    return [provider_info(prefix) for prefix in dict.fromkeys(providers.enabled)]


def is_api_only(gateway: GatewaySettings) -> bool:
    """BinderHub's API-only mode (enable_api_only_mode, implied by require_build_only):
    /build with build_only allowed, and no web UI, badges or links into one."""
    return gateway.enable_api_only_mode or gateway.require_build_only


def repoproviders_config(providers: ProviderSettings) -> list[dict[str, Any]]:
    """/api/repoproviders: BinderHub's `display_config` of each enabled provider, for the React UI."""
    out = []
    for info in enabled_providers(providers):
        prefix = info.prefix
        config: dict[str, Any] = {"displayName": info.display_name, "id": prefix}
        site = provider_site_url(prefix, providers)
        if site is not None:
            # Accept "owner/repo" as typed, or the same behind the site's URL.
            config["detect"] = {"regex": f"^({_site_pattern(site)}/)?(?<repo>.*[^/])/?"}
        config["spec"] = {"validateRegex": info.spec_regex}
        config["repo"] = {"label": info.repo_label, "placeholder": info.repo_placeholder, "urlEncode": info.url_encode}
        config["ref"] = {"enabled": True, "default": "HEAD"} if info.ref_enabled else {"enabled": False}
        out.append(config)
    return out


def legacy_config(providers: ProviderSettings) -> dict[str, dict[str, Any]]:
    """/_config: BinderHub's provider labels keyed by prefix, for the pre-React UI and binderhub-client's detect()."""
    out: dict[str, dict[str, Any]] = {}
    for info in enabled_providers(providers):
        out[info.prefix] = {
            "text": info.repo_label,
            "tag_text": info.ref_text,
            "ref_prop_disabled": not info.ref_enabled,
            "label_prop_disabled": not info.ref_enabled,
            "display_name": info.display_name,
            "regex_detect": _detect_regexes(info.prefix, providers),
        }
    return out


def _strip_git(text: str) -> str:
    return text[: -len(".git")] if text.endswith(".git") else text


def _without_userinfo(url: str) -> str:
    """A URL without user name or password: metric labels are scraped by many."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def repo_url_for(prefix: str, spec: str, providers: ProviderSettings) -> str:
    """The repository URL BinderHub reports for a spec (its get_repo_url()), without resolving anything.

    Pure: the `repo` label of the build and launch metrics. `spec` is the raw
    spec, trailing slashes removed. Credentials in a URL are dropped.
    """
    parts = spec.split("/")
    try:
        if prefix == "gh" and len(parts) >= 2:
            owner, repo = urllib.parse.unquote(parts[0]), _strip_git(urllib.parse.unquote(parts[1]))
            return f"{_web_base(providers.github_url)}/{owner}/{repo}"
        if prefix == "gist" and len(parts) >= 2:
            user, gist_id = urllib.parse.unquote(parts[0]), urllib.parse.unquote(parts[1])
            return f"{_web_base(providers.gist_url)}/{user}/{gist_id}.git"
        if prefix == "gl":
            namespace = _strip_git(urllib.parse.unquote(parts[0]).strip("/"))
            return f"{_web_base(providers.gitlab_url)}/{namespace}.git"
        if prefix in ("git", "ckan"):
            return _without_userinfo(urllib.parse.unquote(parts[0]))
        if prefix == "hydroshare":
            found = re.search(r"[0-9a-f]{32}", urllib.parse.unquote(spec))
            if found:
                return f"{_web_base(providers.hydroshare_url)}/resource/{found.group(0)}"
    except (IndexError, ValueError):
        pass
    return _without_userinfo(urllib.parse.unquote(spec))


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


# Paths a banned network may still reach: version checks (as BinderHub, for
# federation health checks) and the operators' own probes and scrapes.
_UNBANNED_PATHS = frozenset({"/versions", "/health", "/metrics"})

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ban_middleware(networks: list[tuple[Network, str]]) -> Middleware:
    @web.middleware
    async def ban_networks(request: web.Request, handler: _Handler) -> web.StreamResponse:
        if request.path in _UNBANNED_PATHS:
            return await handler(request)
        match = banned_by(request.remote, networks)
        if match is None:
            return await handler(request)
        network, message = match
        log.warning("refused request from %s (banned network %s: %s)", request.remote, network, message)
        text = f"Requests from {message} are not allowed"
        if request.path.startswith("/build/"):
            # An event stream cannot show an HTTP error to its reader: like BinderHub,
            # answer with one `failed` event carrying the status.
            return failed_event_response(403, text)
        raise web.HTTPForbidden(text=text + "\n")

    return ban_networks


# -- routes ------------------------------------------------------------------


def _settings(request: web.Request) -> Settings:
    return request.app[STATE_KEY].settings  # type: ignore[attr-defined,no-any-return]


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def versions_body(settings: Settings) -> dict[str, Any]:
    """/versions: BinderHub's keys, filled with what actually runs here."""
    own = _package_version("binderflow")
    executor = settings.builder.executor
    builder_info = {"executor": executor, "uv-version": _package_version("uv")}
    return {
        # BinderHub reports its repo2docker image here; binderflow builds with uv.
        "builder": f"binderflow {executor} executor (uv {builder_info['uv-version']})",
        "builder_info": builder_info,
        # Clients read this key; it is binderflow's own version, not a BinderHub release.
        "binderhub": f"binderflow {own}",
        "binderflow": own,
    }


def legacy_redirect_location(raw_path: str, base_path: str = "/") -> str | None:
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
    base = base_path if base_path.endswith("/") else base_path + "/"
    location = f"{base}v2/gh/{user}/{repo}/master"
    urlpath = "/" + path if sep else ""
    if urlpath.strip("/"):
        location += "?" + urllib.parse.urlencode({"urlpath": urllib.parse.unquote(urlpath)})
    return location


def _public_base_path(settings: Settings) -> str:
    public = settings.gateway.public_url
    return (urllib.parse.urlsplit(public).path or "/") if public else "/"


async def legacy_repo(request: web.Request) -> web.Response:
    location = legacy_redirect_location(request.rel_url.raw_path, _public_base_path(_settings(request)))
    if location is None:
        raise web.HTTPNotFound(text="Not a Binder repository link: expected /repo/<user>/<repository>\n")
    # Set as is: aiohttp's HTTPFound would re-encode the query (%2F back to /).
    return web.Response(status=302, headers={"Location": location})


async def versions(request: web.Request) -> web.Response:
    return web.json_response(versions_body(_settings(request)))


async def config(request: web.Request) -> web.Response:
    return web.json_response(legacy_config(_settings(request).providers))


async def repoproviders(request: web.Request) -> web.Response:
    return web.json_response(repoproviders_config(_settings(request).providers))


# Badges drawn for binderflow: 20 px high, "launch" on grey and "binder" on blue,
# the first with a small logo, as BinderHub's /badge_logo.svg and /badge.svg are.
_BADGE_FONT = 'font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11"'
_BADGE_LOGO = """<g fill="none" stroke-width="1.6">
<circle cx="10" cy="7" r="3" stroke="#f5a252"/>
<circle cx="10" cy="13" r="3" stroke="#e66581"/>
<path d="M7 7h6M7 13h6" stroke="#fff" stroke-opacity=".7"/>
</g>
"""


def _badge_svg(grey_width: int, blue_width: int, logo_width: int) -> str:
    """A "launch | binder" badge: `logo_width` pixels of the grey half hold the logo (0: none)."""
    width = grey_width + blue_width
    launch_x = logo_width + (grey_width - logo_width) / 2
    binder_x = grey_width + blue_width / 2 - 1
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="launch: binder">
<title>launch: binder</title>
<linearGradient id="shine" x2="0" y2="100%"><stop offset="0" stop-color="#fff" stop-opacity=".15"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="round"><rect width="{width}" height="20" rx="3"/></clipPath>
<g clip-path="url(#round)">
<rect width="{grey_width}" height="20" fill="#555"/>
<rect x="{grey_width}" width="{blue_width}" height="20" fill="#3f7fbf"/>
<rect width="{width}" height="20" fill="url(#shine)"/>
</g>
{_BADGE_LOGO if logo_width else ""}<g fill="#fff" text-anchor="middle" {_BADGE_FONT}>
<text x="{launch_x:g}" y="15" fill="#010101" fill-opacity=".3">launch</text>
<text x="{launch_x:g}" y="14">launch</text>
<text x="{binder_x:g}" y="15" fill="#010101" fill-opacity=".3">binder</text>
<text x="{binder_x:g}" y="14">binder</text>
</g>
</svg>
"""


BADGE_LOGO_SVG = _badge_svg(grey_width=64, blue_width=45, logo_width=17)
BADGE_SVG = _badge_svg(grey_width=45, blue_width=43, logo_width=0)


def _svg(body: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        # Badges are embedded in READMEs everywhere; let caches keep them a day.
        return web.Response(text=body, content_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    return handler


def add_api_routes(app: web.Application) -> None:
    """Register BinderHub's API routes, and its network ban, on the gateway app."""
    settings: Settings = app[STATE_KEY].settings  # type: ignore[attr-defined]
    networks = parse_ban_networks(settings.gateway.ban_networks)
    if networks:
        app.middlewares.append(_ban_middleware(networks))
    app.router.add_get("/_config", config)
    app.router.add_get("/api/repoproviders", repoproviders)
    app.router.add_get("/versions", versions)
    if is_api_only(settings.gateway):
        # BinderHub's API-only mode has no UI: no badges and no links into one.
        return
    app.router.add_get("/badge_logo.svg", _svg(BADGE_LOGO_SVG))
    app.router.add_get("/badge.svg", _svg(BADGE_SVG))
    # mybinder.org's oldest badge URL.
    app.router.add_get("/assets/images/badge.svg", _svg(BADGE_SVG))
    app.router.add_get("/repo/{tail:.+}", legacy_repo)
