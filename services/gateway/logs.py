"""Build logs after the fact, read back from the event log.

    GET /launches/<launch_id>/log        the build log of one launch, as text
    GET /logs/<provider>/<spec>          the latest build log of that repository
    GET /logs?repo=<repository URL>      the same, by URL

In BinderHub a build log is gone once the page that watched it closes; here it
is in the log until retention drops it.
"""

from __future__ import annotations

import contextlib

from aiohttp import web

from schemas.identity import is_launch_id
from schemas.providers import repo_url_for
from services.runtime.eventlog import build_log_line, iter_launch, latest_repo_build

from .paths import parse_provider_path
from .state import GatewayState, state_of

__all__ = ["add_log_routes"]

# Lines are sent in chunks of about this size: one write per line would cost more than the reading.
_CHUNK_BYTES = 64 * 1024


async def _send_build_log(request: web.Request, state: GatewayState, launch_id: str, missing: str) -> web.StreamResponse:
    """The build log of `launch_id` as text, sent as it is read from the log (a long log is
    never held whole in memory); 404 with `missing` when the log holds no event of it."""
    async with contextlib.aclosing(iter_launch(state.js, state.subjects, launch_id)) as events:
        first = await anext(events, None)
        if first is None:
            raise web.HTTPNotFound(text=missing)
        response = web.StreamResponse(headers={"X-Binderflow-Launch-Id": launch_id})
        response.content_type = "text/plain"
        response.charset = "utf-8"
        await response.prepare(request)
        chunk = bytearray(build_log_line(first.event).encode())
        async for logged in events:
            chunk += build_log_line(logged.event).encode()
            if len(chunk) >= _CHUNK_BYTES:
                # write() waits while the client is slow: at most a chunk and a batch are held.
                await response.write(bytes(chunk))
                chunk.clear()
        if chunk:
            await response.write(bytes(chunk))
    await response.write_eof()
    return response


async def launch_log(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    launch_id = request.match_info["launch_id"]
    if not is_launch_id(launch_id):
        raise web.HTTPNotFound(text=f"No launch {launch_id!r}\n")
    return await _send_build_log(
        request, state, launch_id, f"No launch {launch_id} in the event log (never started, or older than its retention)\n"
    )


async def _latest_build_log(request: web.Request, state: GatewayState, repo_url: str) -> web.StreamResponse:
    started = await latest_repo_build(state.js, state.subjects, repo_url)
    if started is None:
        raise web.HTTPNotFound(text=f"No build of {repo_url} in the event log\n")
    # A launch that followed another's build points at the launch holding the lines.
    launch_id = started.log_launch_id or started.launch_id
    return await _send_build_log(
        request, state, launch_id, f"The log of the latest build of {repo_url} (launch {launch_id}) is no longer in the event log\n"
    )


async def repo_log(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    repo = request.rel_url.query.get("repo", "").strip()
    if not repo:
        raise web.HTTPBadRequest(text="Name a repository: /logs?repo=<repository URL> or /logs/<provider>/<spec>\n")
    return await _latest_build_log(request, state, repo)


async def provider_repo_log(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    parsed = parse_provider_path(request.rel_url.raw_path, "/logs/")
    if parsed is None or not parsed[1]:
        raise web.HTTPNotFound(text="Use /logs/<provider>/<spec>\n")
    provider, spec = parsed
    # The spec stays percent-encoded: repo_url_for decodes each part itself.
    return await _latest_build_log(request, state, repo_url_for(provider, spec.rstrip("/"), state.settings.providers))


def add_log_routes(app: web.Application) -> None:
    app.router.add_get("/launches/{launch_id}/log", launch_log)
    app.router.add_get("/logs", repo_log)
    app.router.add_get("/logs/{tail:.+}", provider_repo_log)
