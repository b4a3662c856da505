"""The `gh` provider: GitHub repositories, BinderHub's spec `<owner>/<repo>/<ref>`.

The ref may contain '/' (`owner/repo/feature/x`, or escaped as `feature%2Fx`).
HEAD means the default branch; a full 40-hex sha is taken as is; anything else
is resolved with the API's GET /repos/{owner}/{repo}/commits/{ref}. A link to
`master` or `main` that no longer exists falls back to HEAD with a hint, as
BinderHub does for repositories whose default branch was renamed.

The API token (settings.providers.github_token) only ever travels in the
Authorization header: it is never logged and never part of a message.
"""

from __future__ import annotations

import logging
import math
import re
import time
import urllib.parse
from datetime import datetime, timezone
from typing import Any, Callable

from schemas.providers import repo_url_for
from services.runtime.gitcmd import SHA_RE, GitError, check_ref
from services.runtime.settings import ProviderSettings, Settings

from ..metrics import GITHUB_RATE_LIMIT_REMAINING
from .base import ProviderDirectory, ProviderError, ResolvedSource
from .http import ApiClient, ApiResponse, answer_error

__all__ = [
    "GitHubProvider",
    "GitHubApi",
    "parse_gh_spec",
    "check_owner",
    "check_repo_name",
    "rate_limit_message",
    "not_found_message",
    "github_headers",
]

log = logging.getLogger(__name__)

# GitHub user and organization names: letters, digits and '-', not starting with
# '-', at most 39 characters (some old accounts end in '-' or have '--').
_OWNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}\Z")
# Repository names: letters, digits, '.', '_' and '-', at most 100 characters.
_REPO_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}\Z")
# Refs BinderHub treats as "the default branch" when they do not exist.
DEFAULT_BRANCH_NAMES = frozenset({"master", "main"})


def check_owner(owner: str) -> None:
    if not _OWNER_RE.match(owner):
        raise ProviderError(f"{owner!r} is not a valid GitHub user or organization name")


def check_repo_name(repo: str) -> None:
    if not _REPO_RE.match(repo) or repo in (".", "..") or repo.startswith("-") or ".." in repo:
        raise ProviderError(f"{repo!r} is not a valid GitHub repository name")


def _strip_suffix(text: str, suffix: str) -> str:
    return text[: -len(suffix)] if text.endswith(suffix) and text != suffix else text


def parse_gh_spec(spec: str) -> tuple[str, str, str]:
    """(owner, repo, ref) of BinderHub's `<owner>/<repo>/<ref>`; ProviderError if malformed. Pure."""
    spec = spec.rstrip("/")
    parts = spec.split("/", 2)
    if len(parts) != 3 or not all(parts):
        message = f'Spec is not of the form "owner/repo/ref", provided: "{spec}".'
        if len(parts) == 2 and all(parts) and parts[-1] not in {"main", "master", "HEAD"}:
            message += f' Did you mean "{spec}/HEAD"?'
        raise ProviderError(message)
    owner = urllib.parse.unquote(parts[0])
    repo = _strip_suffix(urllib.parse.unquote(parts[1]), ".git")
    ref = urllib.parse.unquote(parts[2])
    check_owner(owner)
    check_repo_name(repo)
    try:
        check_ref(ref)
    except GitError as exc:
        raise ProviderError(str(exc)) from None
    return owner, repo, ref


def github_headers(token: str) -> dict[str, str]:
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "binderflow",
    }
    if token:
        headers["Authorization"] = f"token {token}"
    return headers


def rate_limit_message(limit: str | None, reset_epoch: int | None, now: float) -> str:
    """What to tell a person when GitHub's rate limit is used up. Pure.

    Like BinderHub, the wait is rounded up to the next 5 minutes.
    """
    used = f"all {limit} requests it may make per hour" if limit else "all the requests it may make"
    if reset_epoch is None:
        return f"GitHub API rate limit exceeded: this Binder has used {used}. Try again later."
    seconds = max(0, reset_epoch - int(now))
    minutes = 5 * (1 + seconds // 60 // 5)
    at = datetime.fromtimestamp(reset_epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"GitHub API rate limit exceeded: this Binder has used {used}. The limit resets at {at}; try again in {minutes} minutes."


def not_found_message(prefix: str, spec: str, ref: str) -> str:
    """BinderHub's message for a ref that does not resolve, with its master/main hint. Pure."""
    parts = [
        f"Could not resolve ref for {prefix}:{spec}: the repository or ref was not found.",
        "Double check your URL and that your repo is public.",
    ]
    if prefix == "gh":
        parts.append('GitHub recently changed default branches from "master" to "main".')
        if ref in DEFAULT_BRANCH_NAMES:
            parts.append("Tip: HEAD will always resolve to a repository's default branch.")
    return " ".join(parts)


def _header_int(headers: Any, name: str) -> int | None:
    try:
        return int(headers.get(name, ""))
    except ValueError:
        return None


class GitHubApi:
    """GitHub's REST API as gh and gist need it: status codes turned into messages."""

    def __init__(self, settings: ProviderSettings, clock: Callable[[], float] = time.time) -> None:
        self.base = settings.github_api_url.rstrip("/")
        self.client = ApiClient(
            "the GitHub API",
            headers=github_headers(settings.github_token),
            timeout_seconds=settings.http_timeout_seconds,
            cache_seconds=settings.cache_seconds,
        )
        self._clock = clock

    async def aclose(self) -> None:
        await self.client.aclose()

    async def get(self, path: str, what: str) -> ApiResponse | None:
        """GET <api>/<path> (percent-encoded). None on 404/422 (does not exist).

        `what` names the thing asked for, for messages ("jupyter/notebook").
        """
        resp = await self.client.get(f"{self.base}/{path}")
        self._note_rate_limit(resp)
        if resp.status == 200:
            return resp
        if resp.status in (404, 422):
            # 422 is GitHub's answer for a ref that names no commit.
            return None
        if resp.status in (403, 429):
            if resp.headers.get("X-RateLimit-Remaining") == "0":
                message = rate_limit_message(resp.headers.get("X-RateLimit-Limit"), _header_int(resp.headers, "X-RateLimit-Reset"), self._clock())
                log.error("GitHub API rate limit exhausted: %s", message)
                raise ProviderError(message)
            retry = _header_int(resp.headers, "Retry-After")
            if retry is not None:
                raise ProviderError(f"GitHub asked this Binder to slow down (secondary rate limit); try again in {math.ceil(retry / 60)} minutes.")
            raise ProviderError(f"GitHub refused access to {what} ({resp.status}: {self._api_message(resp)})")
        if resp.status == 409:
            raise ProviderError(f"The GitHub repository {what} is empty: it has no commits to launch.")
        raise answer_error("GitHub", resp.status, what)

    @staticmethod
    def _api_message(resp: ApiResponse) -> str:
        try:
            data = resp.json()
        except ProviderError:
            return "no details"
        message = data.get("message") if isinstance(data, dict) else None
        return str(message)[:200] if message else "no details"

    def _note_rate_limit(self, resp: ApiResponse) -> None:
        remaining = _header_int(resp.headers, "X-RateLimit-Remaining")
        limit = _header_int(resp.headers, "X-RateLimit-Limit")
        if remaining is None or not limit:
            return
        GITHUB_RATE_LIMIT_REMAINING.set(remaining)
        fraction = remaining / limit
        level = logging.WARNING if fraction < 0.2 else logging.INFO if fraction < 0.5 else logging.DEBUG
        reset = _header_int(resp.headers, "X-RateLimit-Reset")
        in_seconds = max(0, reset - int(self._clock())) if reset is not None else 0
        log.log(level, "GitHub rate limit remaining %d/%d, resets in %d s", remaining, limit, in_seconds)


def _sha_of(resp: ApiResponse, key: str) -> str:
    data = resp.json()
    sha = data.get(key) if isinstance(data, dict) else None
    if not isinstance(sha, str) or not SHA_RE.match(sha):
        raise ProviderError("The GitHub API answered without a commit sha")
    return sha


class GitHubProvider:
    """Repositories on GitHub (or GitHub Enterprise: configure both URLs)."""

    name = "gh"

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "GitHubProvider":
        return cls(settings.providers)

    def __init__(self, settings: ProviderSettings, clock: Callable[[], float] = time.time) -> None:
        self.api = GitHubApi(settings, clock)
        self.sites = settings
        # Web and clone base: https://github.com, or e.g. git://127.0.0.1:9418 in tests.
        self.web_url = settings.github_url.rstrip("/")

    async def aclose(self) -> None:
        await self.api.aclose()

    async def commit(self, owner: str, repo: str, ref: str) -> str | None:
        """The commit `ref` names, or None if the repository or ref does not exist."""
        resp = await self.api.get(f"repos/{owner}/{repo}/commits/{urllib.parse.quote(ref, safe='/')}", f"{owner}/{repo}")
        return None if resp is None else _sha_of(resp, "sha")

    async def head(self, owner: str, repo: str) -> str | None:
        """The commit at the tip of the default branch, or None if there is no such repository."""
        resp = await self.api.get(f"repos/{owner}/{repo}", f"{owner}/{repo}")
        if resp is None:
            return None
        data = resp.json()
        branch = data.get("default_branch") if isinstance(data, dict) else None
        if not isinstance(branch, str) or not branch:
            raise ProviderError(f"The GitHub API did not say which branch is the default of {owner}/{repo}")
        return await self.commit(owner, repo, branch)

    async def resolve(self, spec: str) -> ResolvedSource:
        owner, repo, ref = parse_gh_spec(spec)
        notice = ""
        request_spec = ""
        if SHA_RE.match(ref):
            sha: str | None = ref
        elif ref == "HEAD":
            sha = await self.head(owner, repo)
        else:
            sha = await self.commit(owner, repo, ref)
        if sha is None:
            message = not_found_message("gh", spec, ref)
            if ref in DEFAULT_BRANCH_NAMES:
                # Keep old links working: a master/main that is gone means the default branch.
                sha = await self.head(owner, repo)
                if sha is not None:
                    notice = f"{message}\nTrying again with HEAD instead of {ref}. Please update your links.\n"
                    log.info("gh %s/%s: %s not found, using HEAD", owner, repo, ref)
                    ref = "HEAD"
                    quoted_owner, quoted_repo, _ = spec.split("/", 2)
                    request_spec = f"{quoted_owner}/{quoted_repo}/HEAD"
            if sha is None:
                raise ProviderError(message)
        repo_url = repo_url_for("gh", spec.rstrip("/"), self.sites)
        return ResolvedSource(
            repo_url=repo_url,
            ref=ref,
            resolved_ref=sha,
            ref_url=f"{repo_url}/tree/{sha}",
            clone_url=repo_url,
            persistent_spec=f"{owner}/{repo}/{sha}",
            notice=notice,
            request_spec=request_spec,
        )
