"""The local executor: a uv-built Python environment in the local environment store.

Follows repo2docker's conventions where a single host can: requirements.txt,
setup.py/pyproject.toml, runtime.txt, postBuild and start, with binder/ or
.binder/ taking precedence. JupyterLab is always installed.

Builds run the repository's own code (setup.py, postBuild). Every step that can
(uv, which runs build back-ends, and postBuild) runs in the configured sandbox
(services/runtime/sandbox.py) with the build's resource limits: it may write only
the environment's `venv` and `repo` folders, and sees uv's shared package cache
through a private layer, so no build can plant a package in another's. The
shared cache is filled only by a step that runs no repository code: installing
the operator's JupyterLab requirement from wheels.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import secrets
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

from schemas import ResolvedRepo
from services.runtime.environments import EnvironmentMetadata, LocalEnvironmentStore
from services.runtime.gitcmd import policy_from_settings
from services.runtime.limits import ResourceLimits
from services.runtime.redaction import Redactor, redact_url, url_credentials
from services.runtime.sandbox import Confinement, View, installation_outside_system, sandbox_environment
from services.runtime.scripts import SCRIPT_CANNOT_RUN, script_command
from services.runtime.settings import Settings

from ..content import ContentFetcher, make_fetchers
from ..plan import BuildPlan, plan_build
from ..procs import ProcessFailed, stream_lines
from .base import BuildError, BuildFinished, BuildProgress, LogLine, PhaseChanged

__all__ = ["LocalExecutor", "find_python"]

log = logging.getLogger(__name__)

# Control groups of build steps are named <prefix><random>.
_BUILD_GROUP_PREFIX = "build-"


def find_python(version: str) -> str | None:
    """Path of a Python X.Y interpreter on this host, or None.

    Looks on PATH, then in pyenv's versions folder (pyenv's shims only serve the
    default version, so they are skipped).
    """
    if version == f"{sys.version_info[0]}.{sys.version_info[1]}":
        return getattr(sys, "_base_executable", sys.executable)
    exe = f"python{version}"
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if "shims" in directory:
            continue
        candidate = os.path.join(directory, exe)
        if os.access(candidate, os.X_OK):
            return candidate
    roots = [os.environ.get("PYENV_ROOT", ""), os.path.expanduser("~/.pyenv")]
    for root in filter(None, roots):
        for candidate in sorted(glob.glob(os.path.join(root, "versions", f"{version}*", "bin", exe)), reverse=True):
            if os.access(candidate, os.X_OK):
                return candidate
    return None


def _uv_binary() -> str:
    """uv from binderflow's own environment (a dependency), else PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "uv")
    return beside if os.access(beside, os.X_OK) else (shutil.which("uv") or "uv")


def _available_pythons() -> list[str]:
    found = set()
    for minor in range(6, 16):
        if find_python(f"3.{minor}"):
            found.add(f"3.{minor}")
    return sorted(found, key=lambda v: tuple(map(int, v.split("."))))


class LocalExecutor:
    """Builds environments with uv into a LocalEnvironmentStore."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "LocalExecutor":
        b = settings.builder
        confinement = Confinement.create(settings.sandbox, settings.limits.build)
        log.info("build steps run in %s", confinement.describe())
        if confinement.groups is not None:
            confinement.groups.remove_empty(_BUILD_GROUP_PREFIX)
        return cls(
            LocalEnvironmentStore(settings.environments_path),
            make_fetchers(settings, policy_from_settings(settings)),
            Path(b.uv_cache_dir).expanduser() if b.uv_cache_dir else settings.data_path / "uv-cache",
            index_url=b.index_url,
            find_links=b.find_links,
            no_index=b.no_index,
            jupyterlab_requirement=b.jupyterlab_requirement,
            build_timeout_seconds=b.build_timeout_seconds,
            confinement=confinement,
            tmp_bytes=settings.limits.tmp_bytes,
        )

    def __init__(
        self,
        store: LocalEnvironmentStore,
        fetchers: "dict[str, ContentFetcher]",
        cache_dir: Path,
        *,
        index_url: str = "",
        find_links: list[str] | None = None,
        no_index: bool = False,
        jupyterlab_requirement: str = "jupyterlab>=4",
        build_timeout_seconds: float = 1800.0,
        confinement: Confinement | None = None,
        tmp_bytes: int = 1024**3,
    ) -> None:
        self.store = store
        self.fetchers = fetchers
        self.cache_dir = Path(cache_dir)
        self.index_url = index_url
        self.find_links = list(find_links or [])
        self.no_index = no_index
        self.jupyterlab_requirement = jupyterlab_requirement
        self.build_timeout_seconds = build_timeout_seconds
        self._confinement = confinement
        self.tmp_bytes = tmp_bytes
        self._cache_primed = False
        # An index or link URL may carry credentials: they reach uv through its
        # environment (never a command line `ps` shows), and are masked in the log.
        self._redactor = Redactor.for_urls([index_url, *self.find_links])

    @property
    def confinement(self) -> Confinement:
        """The sandbox and limits; by default bubblewrap with no limits, checked on first use."""
        if self._confinement is None:
            self._confinement = Confinement.create("bubblewrap", ResourceLimits())
        return self._confinement

    async def build(self, repo: ResolvedRepo) -> AsyncIterator[BuildProgress]:
        name = repo.image_name
        if self.store.is_complete(name):
            yield BuildFinished(image_name=name, was_cached=True)
            return
        started = time.monotonic()
        deadline = started + self.build_timeout_seconds if self.build_timeout_seconds else None
        cm, target = await self.store.lock_building(name)
        try:
            if self.store.is_complete(name):
                # Another builder finished it while we waited for the lock.
                yield BuildFinished(image_name=name, was_cached=True)
                return
            workdir = target / "repo"
            yield PhaseChanged("fetching", f"Fetching {redact_url(repo.repo_url)} at {repo.resolved_ref}...\n")
            async for line in self._fetch(repo, workdir, deadline):
                yield LogLine(line)
            yield PhaseChanged("building", "Building the environment...\n")
            plan = plan_build(workdir)
            python = _python_for(plan)
            async for progress in self._build_environment(plan, python, target, workdir, deadline):
                yield progress
            metadata = EnvironmentMetadata(
                name=name,
                repo_url=redact_url(repo.repo_url),
                resolved_ref=repo.resolved_ref,
                python=plan.python_version or f"{sys.version_info[0]}.{sys.version_info[1]}",
                built_at=datetime.now(timezone.utc).isoformat(),
                build_seconds=round(time.monotonic() - started, 3),
                start_script=plan.start,
                python_prefix=str(installation_outside_system(python) or ""),
                binder_dir=plan.binder_dir,
            )
            yield PhaseChanged("pushing", f"Storing environment {name}...\n")
            await asyncio.to_thread(self.store.mark_complete, name, metadata)
            yield BuildFinished(image_name=name)
        finally:
            cm.__exit__(None, None, None)

    # -- steps ---------------------------------------------------------------
    async def _fetch(self, repo: ResolvedRepo, workdir: Path, deadline: float | None) -> AsyncIterator[str]:
        """The fetcher's lines; the fetch counts against the build's time like every other step.

        Past the deadline the fetcher is cancelled, which stops what it runs (git's
        whole process group, or its downloads), and the build fails.
        """
        fetcher = self.fetchers.get(repo.content_provider)
        if fetcher is None:
            raise BuildError(f"This builder cannot fetch content from {repo.content_provider!r} repositories.")
        workdir.mkdir(parents=True, exist_ok=True)
        lines = fetcher.fetch(repo, workdir)
        try:
            while True:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    line = await asyncio.wait_for(anext(lines), remaining)
                except StopAsyncIteration:
                    return
                except asyncio.TimeoutError:
                    raise BuildError(
                        f"The build took longer than {self.build_timeout_seconds:.0f} s and was stopped while fetching the repository."
                    ) from None
                yield line
        finally:
            await lines.aclose()

    def _uv_env(self, venv: Path | None, home: Path) -> dict[str, str]:
        env = sandbox_environment({
            "UV_CACHE_DIR": str(self.cache_dir),
            "UV_PYTHON_DOWNLOADS": "never",
            "UV_NO_PROGRESS": "1",
            # The cache is seen through a private layer (another file system), so
            # uv copies from it instead of hard-linking.
            "UV_LINK_MODE": "copy",
            "NO_COLOR": "1",
        }, home)
        if self.index_url:
            env["UV_DEFAULT_INDEX"] = self.index_url
        if self.find_links:
            env["UV_FIND_LINKS"] = ",".join(self.find_links)
        if venv is not None:
            env["VIRTUAL_ENV"] = str(venv)
            env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
        return env

    def _script_env(self, env: dict[str, str]) -> dict[str, str]:
        """The environment of the repository's own code: without an index or links that
        carry credentials (it may print its environment into the public build log)."""
        secret = {name for name, url in (("UV_DEFAULT_INDEX", self.index_url),) if url_credentials(url)}
        if any(url_credentials(link) for link in self.find_links):
            secret.add("UV_FIND_LINKS")
        return {name: value for name, value in env.items() if name not in secret}

    def _index_args(self) -> list[str]:
        # The index and find-links travel in the environment (_uv_env).
        return ["--no-index"] if self.no_index else []

    def _local_sources(self) -> tuple[Path, ...]:
        """Directories of wheels on this host that uv reads (file: indexes and find-links)."""
        found = []
        for source in (self.index_url, *self.find_links):
            path = source[len("file://"):] if source.startswith("file://") else source
            if path.startswith("/") and os.path.exists(path):
                found.append(Path(path))
        return tuple(found)

    def _view(self, target: Path, python: str, *, with_cache: bool) -> View:
        """What a build step sees: its environment's two folders, the interpreter, uv and
        (for uv's steps) the package cache and local wheel directories."""
        readable = [Path(_uv_binary()), *self._local_sources()]
        prefix = installation_outside_system(python)
        if prefix is not None:
            readable.append(prefix)
        layers: tuple[Path, ...] = ()
        if with_cache:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            layers = (self.cache_dir,)
        return View(
            writable=(target / "venv", target / "repo"),
            readable=tuple(readable),
            private_layers=layers,
            tmp_bytes=self.tmp_bytes,
        )

    async def _run(
        self, cmd: list[str], view: View, cwd: Path, env: dict[str, str], deadline: float | None, what: str, is_script: bool = False
    ) -> AsyncIterator[str]:
        """`cmd`'s lines, sandboxed in `view`; `is_script`: it is the repository's own script."""
        yield self._redactor.text(f"$ {' '.join(cmd)}")
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise BuildError(f"The build took longer than {self.build_timeout_seconds:.0f} s and was stopped.")
        argv, preexec, group = self.confinement.prepare(cmd, view, cwd, f"{_BUILD_GROUP_PREFIX}{secrets.token_hex(6)}")
        try:
            async for line in stream_lines(argv, str(cwd), env, remaining, preexec):
                yield self._redactor.text(line)
        except ProcessFailed as exc:
            if exc.timed_out:
                raise BuildError(f"The build took longer than {self.build_timeout_seconds:.0f} s and was stopped during {what}.") from None
            if group is not None and group.ran_out_of_memory():
                limit = self.confinement.limits.memory_bytes / 1024**3
                raise BuildError(f"{what} ran out of memory (this Binder allows a build {limit:.1f} GiB) and was stopped.") from None
            if is_script and exc.returncode in SCRIPT_CANNOT_RUN:
                raise BuildError(f"{what} could not be run (exit status {exc.returncode}); see the build log.") from None
            raise BuildError(f"{what} failed (exit status {exc.returncode}); see the build log.") from None
        finally:
            if group is not None:
                await asyncio.to_thread(group.remove)

    async def _build_environment(self, plan: BuildPlan, python: str, target: Path, workdir: Path, deadline: float | None) -> AsyncIterator[BuildProgress]:
        uv = _uv_binary()
        venv = target / "venv"
        venv.mkdir(exist_ok=True)
        async for line in self._prime_cache(python, deadline):
            yield LogLine(line)
        uv_view = self._view(target, python, with_cache=True)
        env = self._uv_env(None, workdir)
        async for line in self._run([uv, "venv", "--seed", "--python", python, str(venv)], uv_view, workdir, env, deadline, "Creating the Python environment"):
            yield LogLine(line)
        # --compile-bytecode: every server started from this environment imports
        # JupyterLab's stack from ready .pyc files instead of compiling it again
        # (seconds per start, and the store need not be writable by servers).
        install = [uv, "pip", "install", "--compile-bytecode", "--python", str(venv / "bin" / "python"), *self._index_args(), self.jupyterlab_requirement]
        if plan.requirements:
            install += ["-r", plan.requirements]
        if plan.install_repository:
            install.append(".")
        env = self._uv_env(venv, workdir)
        async for line in self._run(install, uv_view, workdir, env, deadline, "Installing the requirements"):
            yield LogLine(line)
        if plan.post_build:
            view = self._view(target, python, with_cache=False)
            async for line in self._run(script_command(workdir / plan.post_build), view, workdir, self._script_env(env), deadline, plan.post_build, is_script=True):
                yield LogLine(line)

    async def _prime_cache(self, python: str, deadline: float | None) -> AsyncIterator[str]:
        """Fill the shared package cache with the JupyterLab stack every environment gets.

        Runs outside the sandbox with the cache writable, so it runs no repository
        code and builds nothing: the operator's requirement, wheels only, into a
        throw-away folder. Once per builder process; later builds find the cache warm.
        """
        if self._cache_primed:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="binderflow-prime-") as scratch:
            cmd = [
                _uv_binary(), "pip", "install", "--only-binary", ":all:", "--python", python,
                "--target", scratch, *self._index_args(), self.jupyterlab_requirement,
            ]
            env = self._uv_env(None, Path(scratch))
            remaining = None if deadline is None else max(0.1, deadline - time.monotonic())
            try:
                async for line in stream_lines(cmd, scratch, env, remaining):
                    yield self._redactor.text(line)
            except ProcessFailed as exc:
                # Not fatal: the build's own install says what is wrong, in its log.
                yield f"(the shared package cache could not be filled: exit status {exc.returncode})"
                return
        self._cache_primed = True


def _python_for(plan: BuildPlan) -> str:
    """The interpreter the environment is made from; BuildError if runtime.txt asks for one this host lacks."""
    python = find_python(plan.python_version) if plan.python_version else getattr(sys, "_base_executable", sys.executable)
    if python is None:
        have = ", ".join(_available_pythons()) or "none"
        raise BuildError(
            f"{plan.binder_dir + '/' if plan.binder_dir else ''}runtime.txt asks for Python {plan.python_version}, "
            f"which this host cannot provide (available here: {have})."
        )
    return python
