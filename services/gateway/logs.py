"""Build logs after the fact, read back from the event log.

    GET /launches/<launch_id>/log        the build log of one launch, as text
    GET /logs/<provider>/<spec>          the latest build log of that repository
    GET /logs?repo=<repository URL>      the same, by URL

In BinderHub a build log is gone once the page that watched it closes; here it
is in the log until retention drops it.
"""

from __future__ import annotations

from aiohttp import web

from schemas.identity import is_launch_id
from schemas.providers import repo_url_for
from services.runtime.eventlog import build_log_text, latest_repo_build, read_launch

from .paths import parse_provider_path
from .state import GatewayState, state_of

__all__ = ["add_log_routes"]


def _text(body: str, launch_id: str) -> web.Response:
    return web.Response(text=body, content_type="text/plain", charset="utf-8", headers={"X-Binderflow-Launch-Id": launch_id})


async def launch_log(request: web.Request) -> web.Response:
    state = state_of(request)
    launch_id = request.match_info["launch_id"]
    if not is_launch_id(launch_id):
        raise web.HTTPNotFound(text=f"No launch {launch_id!r}\n")
    events = await read_launch(state.js, state.subjects, launch_id)
    if not events:
        raise web.HTTPNotFound(text=f"No launch {launch_id} in the event log (never started, or older than its retention)\n")
    return _text(build_log_text(events), launch_id)


async def _latest_build_log(state: GatewayState, repo_url: str) -> web.Response:
    started = await latest_repo_build(state.js, state.subjects, repo_url)
    if started is None:
        raise web.HTTPNotFound(text=f"No build of {repo_url} in the event log\n")
    # A launch that followed another's build points at the launch holding the lines.
    launch_id = started.log_launch_id or started.launch_id
    events = await read_launch(state.js, state.subjects, launch_id)
    if not events:
        raise web.HTTPNotFound(text=f"The log of the latest build of {repo_url} (launch {launch_id}) is no longer in the event log\n")
    return _text(build_log_text(events), launch_id)


async def repo_log(request: web.Request) -> web.Response:
    state = state_of(request)
    repo = request.rel_url.query.get("repo", "").strip()
    if not repo:
        raise web.HTTPBadRequest(text="Name a repository: /logs?repo=<repository URL> or /logs/<provider>/<spec>\n")
    return await _latest_build_log(state, repo)


async def provider_repo_log(request: web.Request) -> web.Response:
    state = state_of(request)
    parsed = parse_provider_path(request.rel_url.raw_path, "/logs/")
    if parsed is None or not parsed[1]:
        raise web.HTTPNotFound(text="Use /logs/<provider>/<spec>\n")
    provider, spec = parsed
    # The spec stays percent-encoded: repo_url_for decodes each part itself.
    return await _latest_build_log(state, repo_url_for(provider, spec.rstrip("/"), state.settings.providers))


def add_log_routes(app: web.Application) -> None:
    app.router.add_get("/launches/{launch_id}/log", launch_log)
    app.router.add_get("/logs", repo_log)
    app.router.add_get("/logs/{tail:.+}", provider_repo_log)
