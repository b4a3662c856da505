"""A stand-in for gitlab.com's REST API (v4), on 127.0.0.1.

The tests cannot reach the internet, so this aiohttp.web server answers the
endpoints binderflow's `gl` provider uses, the way gitlab.com does (shapes taken
from recorded answers):

- GET /api/v4/projects/{url-escaped path}                            -> the project
- GET /api/v4/projects/{url-escaped path}/repository/commits/{ref}   -> a commit (`id`, ...);
  {"message": "404 Commit Not Found"} / {"message": "404 Project Not Found"}

Answers carry GitLab's RateLimit-Limit/-Remaining/-Reset/-Observed/-Name headers
and a weak ETag; If-None-Match answers 304. Private projects need the
PRIVATE-TOKEN header (a wrong one gets 401); when the limit is used up the
answer is 429 "Retry later" with Retry-After.

Knobs: `delay`, `fail_status`, `rate_remaining`, `expected_token`; `requests`
records every request, `not_modified` counts 304s.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .restapi import RestApiStandIn, commit_for

__all__ = ["GitLabApiStandIn", "FakeProject"]

WEB = "https://gitlab.com"


@dataclass
class FakeProject:
    path: str  # path_with_namespace, e.g. "group/subgroup/project"
    id: int
    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    private: bool = False

    def commit_for(self, ref: str) -> str | None:
        return commit_for(ref, self.default_branch, self.branches, self.tags)


class GitLabApiStandIn(RestApiStandIn):
    """gitlab.com's API v4 on 127.0.0.1 (see the module docstring)."""

    def __init__(self, expected_token: str | None = None, rate_limit: int = 2000) -> None:
        super().__init__(expected_token, rate_limit, rate_reset=int(time.time()) + 60)
        self.projects: dict[str, FakeProject] = {}
        self._next_id = 13083

    def add_project(self, path: str, branches: dict[str, str], tags: dict[str, str] | None = None, default_branch: str = "main", private: bool = False) -> FakeProject:
        self._next_id += 1
        project = FakeProject(path, self._next_id, default_branch, dict(branches), dict(tags or {}), private)
        self.projects[path.lower()] = project
        return project

    def _headers(self, authenticated: bool) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Cache-Control": "max-age=0, private, must-revalidate",
            "Vary": "Origin, Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
            "X-Gitlab-Meta": '{"correlation_id":"01HSTANDIN","version":"1"}',
            "RateLimit-Name": "throttle_authenticated_api" if authenticated else "throttle_unauthenticated_api",
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": str(self.rate_limit - max(0, self.rate_remaining)),
            "RateLimit-Remaining": str(max(0, self.rate_remaining)),
            "RateLimit-Reset": str(self.rate_reset),
        }

    def _reply(self, request: web.Request, status: int, data: Any) -> web.Response:
        headers = self._headers("PRIVATE-TOKEN" in request.headers)
        if status != 200:
            headers["Cache-Control"] = "no-cache"
        return self._json(request, status, data, headers)

    def _failure(self, status: int) -> web.Response:
        return web.Response(status=status, text=json.dumps({"message": "500 Internal Server Error"}), content_type="application/json")

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        token = request.headers.get("PRIVATE-TOKEN")
        if token is not None and self.expected_token is not None and token != self.expected_token:
            return self._reply(request, 401, {"message": "401 Unauthorized"})
        if self.rate_remaining <= 0:
            headers = {**self._headers(token is not None), "Retry-After": str(max(1, self.rate_reset - int(time.time()))), "Content-Type": "text/plain"}
            return web.Response(status=429, text="Retry later\n", headers=headers)
        # /api/v4/projects/<escaped path>[/repository/commits/<escaped ref>]
        raw = request.rel_url.raw_path.strip("/").split("/")
        if raw[:3] != ["api", "v4", "projects"] or len(raw) < 4:
            return self._reply(request, 404, {"error": "404 Not Found"})
        project = self.projects.get(urllib.parse.unquote(raw[3]).lower())
        if project is None or (project.private and token is None):
            return self._reply(request, 404, {"message": "404 Project Not Found"})
        rest = raw[4:]
        if not rest:
            return self._reply(request, 200, self._project_json(project))
        if rest[:2] == ["repository", "commits"] and len(rest) >= 3:
            ref = urllib.parse.unquote("/".join(rest[2:]))
            sha = project.commit_for(ref)
            if sha is None:
                return self._reply(request, 404, {"message": "404 Commit Not Found"})
            return self._reply(request, 200, self._commit_json(project, sha))
        return self._reply(request, 404, {"error": "404 Not Found"})

    def _project_json(self, p: FakeProject) -> dict[str, Any]:
        name = p.path.rsplit("/", 1)[1]
        return {
            "id": p.id,
            "description": "a project served by the gitlab.com stand-in",
            "name": name,
            "name_with_namespace": p.path.replace("/", " / "),
            "path": name,
            "path_with_namespace": p.path,
            "default_branch": p.default_branch,
            "visibility": "private" if p.private else "public",
            "web_url": f"{WEB}/{p.path}",
            "http_url_to_repo": f"{WEB}/{p.path}.git",
            "ssh_url_to_repo": f"git@gitlab.com:{p.path}.git",
            "created_at": "2014-03-04T12:00:00.000Z",
            "last_activity_at": "2024-05-01T12:00:00.000Z",
        }

    def _commit_json(self, p: FakeProject, sha: str) -> dict[str, Any]:
        when = "2024-05-01T12:00:00.000+00:00"
        return {
            "id": sha,
            "short_id": sha[:8],
            "created_at": when,
            "parent_ids": [],
            "title": "change",
            "message": "change\n",
            "author_name": "Test",
            "author_email": "t@example.invalid",
            "authored_date": when,
            "committer_name": "Test",
            "committer_email": "t@example.invalid",
            "committed_date": when,
            "trailers": {},
            "extended_trailers": {},
            "web_url": f"{WEB}/{p.path}/-/commit/{sha}",
            "stats": {"additions": 1, "deletions": 0, "total": 1},
            "status": None,
            "project_id": p.id,
            "last_pipeline": None,
        }
