"""Shared parts of the REST API stand-ins (api.github.com, GitLab): a server in the
test's own event loop that records every request, can be slowed down or made to
fail, answers JSON with a weak ETag (304 to a matching If-None-Match, as both
services do) and keeps a rate limit count the way the real APIs report it.

Each stand-in subclass says how the service answers (`_answer`, `_failure`) and
which headers it sends; this module only holds what both do alike.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Self

from aiohttp import web

__all__ = ["RestApiStandIn", "RecordedRequest", "commit_for"]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]


def commit_for(ref: str, default_branch: str, branches: dict[str, str], tags: dict[str, str]) -> str | None:
    """The commit `ref` names, as both services resolve refs: HEAD is the default
    branch, then a branch, then a tag, then an unambiguous sha prefix of 7+ hex digits."""
    if ref == "HEAD":
        return branches.get(default_branch)
    for table in (branches, tags):
        if ref in table:
            return table[ref]
    if len(ref) < 7 or any(c not in "0123456789abcdef" for c in ref):
        return None
    matches = {sha for sha in {*branches.values(), *tags.values()} if sha.startswith(ref)}
    return matches.pop() if len(matches) == 1 else None


class RestApiStandIn:
    """A REST API on 127.0.0.1, started with `async with` (or start/stop) in the test's loop.

    Knobs: `delay` (seconds before every answer), `fail_status` (answer every
    request with it), `rate_remaining`, `rate_reset`, `expected_token`.
    `requests` records every request, `not_modified` counts 304 answers.
    """

    def __init__(self, expected_token: str | None, rate_limit: int, rate_reset: int) -> None:
        self.expected_token = expected_token
        self.rate_limit = rate_limit
        self.rate_remaining = rate_limit - 1
        self.rate_reset = rate_reset
        self.delay = 0.0
        self.fail_status: int | None = None
        self.requests: list[RecordedRequest] = []
        self.not_modified = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(RecordedRequest(request.method, request.rel_url.raw_path, dict(request.headers)))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_status is not None:
            return self._failure(self.fail_status)
        return await self._answer(request)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        """The service's answer to `request` (after recording, delay and fail_status)."""
        raise NotImplementedError

    def _failure(self, status: int) -> web.Response:
        """The service's answer when it fails every request with `status`."""
        raise NotImplementedError

    def _json(self, request: web.Request, status: int, data: Any, headers: dict[str, str]) -> web.Response:
        """`data` as compact JSON with `headers`. A 200 carries a weak ETag, and a request
        that already has it gets 304 without a body, which costs no rate limit."""
        body = json.dumps(data, separators=(",", ":"))
        headers = dict(headers)
        if status == 200:
            etag = 'W/"' + hashlib.sha256(body.encode()).hexdigest() + '"'
            headers["ETag"] = etag
            if request.headers.get("If-None-Match") == etag:
                self.not_modified += 1
                headers.pop("Content-Type", None)
                return web.Response(status=304, headers=headers)
        self.rate_remaining -= 1
        return web.Response(status=status, text=body, headers=headers)
