"""The `git` provider: any Git URL, BinderHub's spec `<url-escaped-url>/<ref>`."""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.parse

from services.runtime.gitcmd import (
    SHA_RE,
    SHORT_SHA_RE,
    GitError,
    GitPolicy,
    GitTarget,
    check_ref,
    check_url,
    first_error_line,
    policy_from_settings,
    run_git,
)
from services.runtime.redaction import redact_url

from schemas.providers import without_userinfo
from services.runtime.settings import Settings

from .base import ProviderDirectory, ProviderError, ResolvedSource

__all__ = ["GitProvider", "parse_ls_remote", "pick_ref"]

log = logging.getLogger(__name__)


def parse_ls_remote(output: str) -> dict[str, str]:
    """`git ls-remote` output as {ref name: sha}."""
    refs: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, name = line.partition("\t")
        if SHA_RE.match(sha) and name:
            refs[name] = sha
    return refs


def pick_ref(refs: dict[str, str], ref: str) -> str | None:
    """The commit `ref` names among advertised refs, or None. Pure."""
    if ref == "HEAD":
        return refs.get("HEAD")
    candidates = [ref] if ref.startswith("refs/") else [f"refs/heads/{ref}", f"refs/tags/{ref}"]
    for name in candidates:
        # An annotated tag's commit is advertised as "<tag>^{}".
        if f"{name}^{{}}" in refs:
            return refs[f"{name}^{{}}"]
        if name in refs:
            return refs[name]
    if SHORT_SHA_RE.match(ref):
        # An annotated tag's own sha names a tag object: it stands for its commit.
        commit_of = {sha: refs.get(f"{name}^{{}}", sha) for name, sha in refs.items()}
        matches = {commit_of[sha] for sha in commit_of if sha.startswith(ref)}
        if len(matches) == 1:
            return matches.pop()
    return None


class GitProvider:
    """Any Git repository by URL."""

    name = "git"

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "GitProvider":
        return cls(policy_from_settings(settings))

    def __init__(self, policy: GitPolicy) -> None:
        self.policy = policy

    async def aclose(self) -> None:
        """Nothing to release: every resolve runs git processes of its own."""

    def parse_spec(self, spec: str) -> tuple[str, str]:
        """Split BinderHub's `<url-escaped-url>/<ref>` into (url, ref)."""
        if "/" not in spec:
            raise ProviderError(
                f"The spec {spec!r} is malformed: the git provider expects <url-escaped-url>/<ref>, "
                "for example git/https%3A%2F%2Fexample.org%2Frepo.git/HEAD"
            )
        quoted_url, quoted_ref = spec.split("/", 1)
        url = urllib.parse.unquote(quoted_url)
        ref = urllib.parse.unquote(quoted_ref)
        return url, ref

    async def resolve(self, spec: str) -> ResolvedSource:
        url, ref = self.parse_spec(spec)
        try:
            check_ref(ref)
            target = await check_url(url, self.policy)
        except GitError as exc:
            raise ProviderError(str(exc)) from None
        shown = redact_url(url)
        code, out, err = await run_git(["ls-remote", "--", target.url], self.policy, config=target.config)
        if code != 0:
            raise ProviderError(f"Could not reach the repository at {shown}: {first_error_line(err)}")
        refs = parse_ls_remote(out)
        if SHA_RE.match(ref):
            commit = ref
        else:
            found = pick_ref(refs, ref)
            if found is None and SHORT_SHA_RE.match(ref):
                found = await self._resolve_short_sha(target, ref)
            if found is None:
                raise ProviderError(f"Could not resolve ref {ref!r} in {shown}: no branch, tag or commit of that name")
            commit = found
        return ResolvedSource(
            # Without credentials: the repository URL is in events and metric labels.
            repo_url=without_userinfo(url),
            ref=ref,
            resolved_ref=commit,
            ref_url=url,
            clone_url=url,
            persistent_spec=f"{urllib.parse.quote(url, safe='')}/{commit}",
        )

    async def _resolve_short_sha(self, target: GitTarget, short: str) -> str | None:
        """A short sha that is no branch tip: fetch the history (no file contents) and look."""
        tmp = tempfile.mkdtemp(prefix="binderflow-resolve-")
        try:
            code, _, _ = await run_git(["init", "--quiet", "--bare", tmp], self.policy)
            if code != 0:
                return None
            code, _, err = await run_git(
                ["fetch", "--quiet", "--filter=blob:none", "--no-tags", "--", target.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                self.policy,
                cwd=tmp,
                config=target.config,
            )
            if code != 0:
                log.info("history fetch for short sha failed: %s", first_error_line(err))
                return None
            code, out, _ = await run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{short}^{{commit}}"], self.policy, cwd=tmp)
            sha = out.strip()
            return sha if code == 0 and SHA_RE.match(sha) else None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
