"""A stand-in for api.github.com, on 127.0.0.1.

The tests cannot reach the internet, so this aiohttp.web server answers the few
REST API endpoints binderflow's `gh` and `gist` providers use, the way GitHub
does (shapes taken from recorded answers of api.github.com):

- GET /repos/{owner}/{repo}                -> the repository (`default_branch`, ...)
- GET /repos/{owner}/{repo}/commits/{ref}  -> a commit (`sha`, ...); 422 "No commit found
  for SHA" for an unknown ref, 404 for an unknown (or, without a token, private)
  repository, 409 for an empty one; a renamed repository answers 301
- GET /repositories/{id}[/commits/{ref}]   -> where renamed repositories redirect to
- GET /gists/{id}                          -> a gist (`owner`, `public`, `history`, ...)
- GET /gists/{id}/{sha}                    -> a gist at one revision

Every answer carries GitHub's headers: X-RateLimit-Limit/-Remaining/-Reset/-Used/
-Resource, a weak ETag on 200s (If-None-Match answers 304, which, as on GitHub,
does not count against the rate limit), X-GitHub-Request-Id, X-GitHub-Media-Type.
When the limit is used up, answers are GitHub's 403 "API rate limit exceeded".

Knobs for tests: `delay` (seconds before every answer), `fail_status` (answer
every request with that status, e.g. 500), `rate_remaining`, `rate_reset`,
`expected_token` (other tokens get 401 "Bad credentials"). `requests` records
every request (path and headers) and `not_modified` counts 304 answers.
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .restapi import RecordedRequest, RestApiStandIn, commit_for

__all__ = ["GitHubApiStandIn", "FakeRepo", "FakeGist", "RecordedRequest"]

DOCS = "https://docs.github.com/rest"
WEB = "https://github.com"
API = "https://api.github.com"


@dataclass
class FakeRepo:
    owner: str
    name: str
    id: int
    default_branch: str = "main"
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    private: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def commit_for(self, ref: str) -> str | None:
        return commit_for(ref, self.default_branch, self.branches, self.tags)


@dataclass
class FakeGist:
    id: str
    owner: str
    versions: list[str]  # newest first
    public: bool = True
    files: dict[str, str] = field(default_factory=lambda: {"requirements.txt": "tabulate\n"})
    # GitHub may shorten a gist's `history`; this many entries are listed (None: all).
    history_limit: int | None = None


def _user(login: str, uid: int = 73973) -> dict[str, Any]:
    return {
        "login": login,
        "id": uid,
        "node_id": "MDQ6VXNlcjczOTcz",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "gravatar_id": "",
        "url": f"{API}/users/{login}",
        "html_url": f"{WEB}/{login}",
        "type": "User",
        "site_admin": False,
    }


class GitHubApiStandIn(RestApiStandIn):
    """api.github.com on 127.0.0.1 (see the module docstring)."""

    def __init__(self, expected_token: str | None = None, rate_limit: int = 5000) -> None:
        super().__init__(expected_token, rate_limit, rate_reset=int(time.time()) + 3600)
        self.repos: dict[str, FakeRepo] = {}
        self.renamed: dict[str, str] = {}
        self.gists: dict[str, FakeGist] = {}
        self._next_id = 87849371

    # -- arranging ------------------------------------------------------------

    def add_repo(self, owner: str, name: str, branches: dict[str, str], tags: dict[str, str] | None = None, default_branch: str = "main", private: bool = False) -> FakeRepo:
        self._next_id += 1
        repo = FakeRepo(owner, name, self._next_id, default_branch, dict(branches), dict(tags or {}), private)
        self.repos[repo.full_name.lower()] = repo
        return repo

    def rename(self, old_full_name: str, repo: FakeRepo) -> None:
        self.renamed[old_full_name.lower()] = repo.full_name.lower()

    def add_gist(self, gist_id: str, owner: str, versions: list[str], public: bool = True) -> FakeGist:
        gist = FakeGist(gist_id, owner, list(versions), public)
        self.gists[gist_id] = gist
        return gist

    # -- serving --------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {
            "Server": "GitHub.com",
            "Content-Type": "application/json; charset=utf-8",
            "Cache-Control": "private, max-age=60, s-maxage=60",
            "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP, Accept-Encoding",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20].upper(),
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_remaining)),
            "X-RateLimit-Reset": str(self.rate_reset),
            "X-RateLimit-Used": str(self.rate_limit - max(0, self.rate_remaining)),
            "X-RateLimit-Resource": "core",
            "Access-Control-Expose-Headers": "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Reset",
        }

    def _error(self, request: web.Request, status: int, message: str, docs: str = DOCS) -> web.Response:
        return self._json(request, status, {"message": message, "documentation_url": docs, "status": str(status)}, self._headers())

    def _ok(self, request: web.Request, data: Any) -> web.Response:
        return self._json(request, 200, data, self._headers())

    def _failure(self, status: int) -> web.Response:
        body = {"message": "Server Error", "documentation_url": DOCS, "status": str(status)}
        return web.Response(status=status, text=json.dumps(body), headers=self._headers())

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if auth and self.expected_token is not None and auth != f"token {self.expected_token}":
            return self._error(request, 401, "Bad credentials")
        if self.rate_remaining <= 0:
            return self._error(
                request,
                403,
                "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )
        parts = [urllib.parse.unquote(p) for p in request.rel_url.raw_path.strip("/").split("/")]
        if parts[:1] == ["repos"] and len(parts) >= 3:
            full = f"{parts[1]}/{parts[2]}".lower()
            if full in self.renamed:
                repo = self.repos[self.renamed[full]]
                rest = "/".join(request.rel_url.raw_path.strip("/").split("/")[3:])
                location = f"{self.url}/repositories/{repo.id}" + (f"/{rest}" if rest else "")
                headers = {**self._headers(), "Location": location}
                body = {"message": "Moved Permanently", "url": location, "documentation_url": DOCS}
                return web.Response(status=301, text=json.dumps(body), headers=headers)
            return self._repo(request, self.repos.get(full), parts[3:])
        if parts[:1] == ["repositories"] and len(parts) >= 2:
            by_id = {str(r.id): r for r in self.repos.values()}
            return self._repo(request, by_id.get(parts[1]), parts[2:])
        if parts[:1] == ["gists"] and len(parts) in (2, 3):
            return self._gist(request, parts[1], parts[2] if len(parts) == 3 else None)
        return self._error(request, 404, "Not Found")

    def _visible(self, request: web.Request, repo: FakeRepo | None) -> FakeRepo | None:
        if repo is None or (repo.private and "Authorization" not in request.headers):
            return None
        return repo

    def _repo(self, request: web.Request, repo: FakeRepo | None, rest: list[str]) -> web.Response:
        repo = self._visible(request, repo)
        if repo is None:
            return self._error(request, 404, "Not Found", f"{DOCS}/repos/repos#get-a-repository")
        if not rest:
            return self._ok(request, self._repo_json(repo))
        if rest[0] == "commits" and len(rest) >= 2:
            if not repo.branches:
                return self._error(request, 409, "Git Repository is empty.", f"{DOCS}/commits/commits#get-a-commit")
            ref = "/".join(rest[1:])
            sha = repo.commit_for(ref)
            if sha is None:
                return self._error(request, 422, f"No commit found for SHA: {ref}", f"{DOCS}/commits/commits#get-a-commit")
            return self._ok(request, self._commit_json(repo, sha))
        return self._error(request, 404, "Not Found")

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        html = f"{WEB}/{repo.full_name}"
        api = f"{API}/repos/{repo.full_name}"
        return {
            "id": repo.id,
            "node_id": "MDEwOlJlcG9zaXRvcnk4Nzg0OTM3MQ==",
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": _user(repo.owner),
            "html_url": html,
            "description": "A repository served by the api.github.com stand-in",
            "fork": False,
            "url": api,
            "commits_url": f"{api}/commits{{/sha}}",
            "git_url": f"git://github.com/{repo.full_name}.git",
            "ssh_url": f"git@github.com:{repo.full_name}.git",
            "clone_url": f"{html}.git",
            "size": 42,
            "default_branch": repo.default_branch,
            "visibility": "private" if repo.private else "public",
            "archived": False,
            "disabled": False,
            "created_at": "2017-04-10T18:23:53Z",
            "updated_at": "2024-05-01T12:00:00Z",
            "pushed_at": "2024-05-01T12:00:00Z",
        }

    def _commit_json(self, repo: FakeRepo, sha: str) -> dict[str, Any]:
        api = f"{API}/repos/{repo.full_name}"
        person = {"name": "Test", "email": "t@example.invalid", "date": "2024-05-01T12:00:00Z"}
        return {
            "sha": sha,
            "node_id": "C_kwDOAAAAAA",
            "commit": {
                "author": person,
                "committer": person,
                "message": "change",
                "tree": {"sha": hashlib.sha1(sha.encode()).hexdigest(), "url": f"{api}/git/trees/{sha}"},
                "url": f"{api}/git/commits/{sha}",
                "comment_count": 0,
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
            },
            "url": f"{api}/commits/{sha}",
            "html_url": f"{WEB}/{repo.full_name}/commit/{sha}",
            "comments_url": f"{api}/commits/{sha}/comments",
            "author": _user(repo.owner),
            "committer": _user(repo.owner),
            "parents": [],
            "stats": {"total": 1, "additions": 1, "deletions": 0},
            "files": [],
        }

    def _gist(self, request: web.Request, gist_id: str, sha: str | None) -> web.Response:
        gist = self.gists.get(gist_id)
        if gist is None or (sha is not None and sha not in gist.versions):
            return self._error(request, 404, "Not Found", f"{DOCS}/gists/gists#get-a-gist")
        api = f"{API}/gists/{gist.id}"
        history = [
            {
                "user": _user(gist.owner),
                "version": version,
                "committed_at": "2024-05-01T12:00:00Z",
                "change_status": {"total": 1, "additions": 1, "deletions": 0},
                "url": f"{api}/{version}",
            }
            for version in gist.versions[gist.versions.index(sha) if sha else 0 :]
        ][: gist.history_limit]
        return self._ok(
            request,
            {
                "url": api,
                "forks_url": f"{api}/forks",
                "commits_url": f"{api}/commits",
                "id": gist.id,
                "node_id": "MDQ6R2lzdDhhNjU4ZjdmNjNi",
                "git_pull_url": f"https://gist.github.com/{gist.id}.git",
                "git_push_url": f"https://gist.github.com/{gist.id}.git",
                "html_url": f"https://gist.github.com/{gist.id}",
                "files": {
                    name: {"filename": name, "type": "text/plain", "language": "Text", "size": len(text), "truncated": False, "content": text}
                    for name, text in gist.files.items()
                },
                "public": gist.public,
                "created_at": "2017-11-29T15:05:48Z",
                "updated_at": "2024-05-01T12:00:00Z",
                "description": "a gist served by the api.github.com stand-in",
                "comments": 0,
                "user": None,
                "comments_url": f"{api}/comments",
                "owner": _user(gist.owner),
                "forks": [],
                "history": history,
                "truncated": False,
            },
        )
