"""Fetch a Git repository at one commit (shallow when the server allows it)."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncGenerator

from schemas import ResolvedRepo
from services.runtime.gitcmd import GitError, GitPolicy, check_url, first_error_line, run_git
from services.runtime.redaction import redact_url

from ..errors import BuildError

__all__ = ["GitFetcher"]


class GitFetcher:
    def __init__(self, policy: GitPolicy, timeout_seconds: float = 300.0) -> None:
        self.policy = policy
        self.timeout_seconds = timeout_seconds

    async def fetch(self, repo: ResolvedRepo, workdir: Path) -> AsyncGenerator[str, None]:
        cwd = str(workdir)
        code, _, err = await run_git(["init", "--quiet", cwd], self.policy)
        if code != 0:
            raise BuildError(f"Could not prepare a Git working copy: {first_error_line(err)}")
        url, sha = repo.clone_url, repo.resolved_ref
        # Checked again here: the builder trusts no URL it is handed, and connects
        # to the addresses it checked itself.
        try:
            target = await check_url(url, self.policy)
        except GitError as exc:
            raise BuildError(str(exc)) from None
        # A shallow fetch of the one commit is fastest; servers that refuse to serve
        # an arbitrary commit get a full fetch instead.
        code, _, err = await run_git(
            ["fetch", "--quiet", "--depth", "1", "--no-tags", "--", target.url, sha], self.policy, cwd=cwd, timeout=self.timeout_seconds, config=target.config
        )
        if code != 0:
            yield "Shallow fetch of the commit was refused; fetching the whole history"
            code, _, err = await run_git(
                ["fetch", "--quiet", "--no-tags", "--", target.url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
                self.policy,
                cwd=cwd,
                timeout=self.timeout_seconds,
                config=target.config,
            )
            if code != 0:
                raise BuildError(f"Could not fetch {redact_url(url)}: {first_error_line(err)}")
        code, _, err = await run_git(["checkout", "--quiet", "--detach", sha, "--"], self.policy, cwd=cwd)
        if code != 0:
            raise BuildError(f"Could not check out commit {sha} of {redact_url(url)}: {first_error_line(err)}")
        code, out, _ = await run_git(["log", "-1", "--format=%H %s"], self.policy, cwd=cwd)
        if code == 0:
            yield f"Checked out {out.strip()}"
