"""The `gl` provider: GitLab projects, BinderHub's spec `<url-escaped namespace/project>/<ref>`.

Projects can sit in nested groups (`group%2Fsubgroup%2Fproject/main`). The ref
(HEAD, a branch, a tag or a commit) is resolved with GitLab's
GET /api/v4/projects/{escaped path}/repository/commits/{ref}; a full 40-hex sha
is taken as is. A token (settings.providers.gitlab_token) travels only in the
PRIVATE-TOKEN header, never in a URL, log line or message.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from datetime import datetime, timezone

from schemas.providers import repo_url_for
from services.runtime.gitcmd import SHA_RE, GitError, check_ref
from services.runtime.settings import ProviderSettings, Settings

from .base import ProviderDirectory, ProviderError, ResolvedSource
from .http import ApiClient, ApiResponse, answer_error

__all__ = ["GitLabProvider", "parse_gl_spec"]

# A GitLab group or project path segment: letters, digits, '_', '-', '.'; it
# starts with a letter, digit or '_' and does not end in '.git' or '.atom'.
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}\Z")


def parse_gl_spec(spec: str) -> tuple[str, str]:
    """(namespace path, ref) of `<url-escaped namespace>/<ref>`. Pure."""
    quoted_namespace, sep, quoted_ref = spec.rstrip("/").partition("/")
    if not sep or not quoted_namespace or not quoted_ref:
        raise ProviderError(
            f'Spec is not of the form "url-escaped-namespace/ref", provided: "{spec}" '
            "(for example gl/group%2Fproject/HEAD)"
        )
    namespace = urllib.parse.unquote(quoted_namespace).strip("/")
    if namespace.endswith(".git"):
        namespace = namespace[: -len(".git")]
    segments = namespace.split("/")
    if len(segments) < 2:
        raise ProviderError(f"{namespace!r} is not a GitLab project path: it needs a group and a project, like group/project")
    for segment in segments:
        if not _SEGMENT_RE.match(segment) or ".." in segment or segment.endswith((".git", ".atom")):
            raise ProviderError(f"{namespace!r} is not a valid GitLab project path")
    ref = urllib.parse.unquote(quoted_ref)
    try:
        check_ref(ref)
    except GitError as exc:
        raise ProviderError(str(exc)) from None
    return namespace, ref


def _retry_hint(resp: ApiResponse) -> str:
    retry = resp.headers.get("Retry-After", "")
    if retry.isdigit():
        return f"try again in {max(1, math.ceil(int(retry) / 60))} minutes"
    reset = resp.headers.get("RateLimit-Reset", "")
    if reset.isdigit():
        at = datetime.fromtimestamp(int(reset), timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"the limit resets at {at}"
    return "try again later"


class GitLabProvider:
    """Projects on GitLab.com or a self-hosted GitLab (settings.providers.gitlab_url)."""

    name = "gl"

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "GitLabProvider":
        return cls(settings.providers)

    def __init__(self, settings: ProviderSettings) -> None:
        self.sites = settings
        self.web_url = settings.gitlab_url.rstrip("/")
        headers = {"User-Agent": "binderflow", "Accept": "application/json"}
        if settings.gitlab_token:
            headers["PRIVATE-TOKEN"] = settings.gitlab_token
        self.client = ApiClient(
            "the GitLab API",
            headers=headers,
            timeout_seconds=settings.http_timeout_seconds,
            cache_seconds=settings.cache_seconds,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def commit(self, namespace: str, ref: str) -> str | None:
        """The commit `ref` names in the project, or None if either does not exist."""
        project = urllib.parse.quote(namespace, safe="")
        url = f"{self.web_url}/api/v4/projects/{project}/repository/commits/{urllib.parse.quote(ref, safe='')}"
        resp = await self.client.get(url)
        if resp.status == 404:
            return None
        if resp.status == 200:
            data = resp.json()
            sha = data.get("id") if isinstance(data, dict) else None
            if not isinstance(sha, str) or not SHA_RE.match(sha):
                raise ProviderError("The GitLab API answered without a commit id")
            return sha
        if resp.status == 429:
            raise ProviderError(f"GitLab API rate limit exceeded for this Binder; {_retry_hint(resp)}.")
        if resp.status == 403:
            raise ProviderError(f"GitLab refused access to {namespace} (403 Forbidden)")
        raise answer_error("GitLab", resp.status, namespace)

    async def resolve(self, spec: str) -> ResolvedSource:
        namespace, ref = parse_gl_spec(spec)
        sha = ref if SHA_RE.match(ref) else await self.commit(namespace, ref)
        if sha is None:
            raise ProviderError(
                f"Could not resolve ref for gl:{spec}: the project or ref was not found. "
                "Double check your URL and that your repo is public."
            )
        repo_url = repo_url_for("gl", spec.rstrip("/"), self.sites)
        return ResolvedSource(
            repo_url=repo_url,
            ref=ref,
            resolved_ref=sha,
            ref_url=f"{self.web_url}/{namespace}/tree/{sha}",
            clone_url=repo_url,
            persistent_spec=f"{urllib.parse.quote(namespace, safe='')}/{sha}",
        )
