"""Build executors, side by side; `make_executor` picks one from settings."""

from __future__ import annotations

from pathlib import Path

from services.runtime.environments import LocalEnvironmentStore
from services.runtime.gitcmd import GitPolicy
from services.runtime.settings import Settings

from ..content import make_fetchers
from .base import BuildError, BuildExecutor, BuildFinished, BuildProgress, LogLine, PhaseChanged
from .local import LocalExecutor

__all__ = ["BuildError", "BuildExecutor", "BuildFinished", "BuildProgress", "LogLine", "PhaseChanged", "LocalExecutor", "make_executor"]


def make_executor(settings: Settings, git_policy: GitPolicy) -> BuildExecutor:
    b = settings.builder
    executors = {
        "local": lambda: LocalExecutor(
            LocalEnvironmentStore(settings.environments_path),
            make_fetchers(settings, git_policy),
            Path(b.uv_cache_dir).expanduser() if b.uv_cache_dir else settings.data_path / "uv-cache",
            index_url=b.index_url,
            find_links=b.find_links,
            no_index=b.no_index,
            jupyterlab_requirement=b.jupyterlab_requirement,
            build_timeout_seconds=b.build_timeout_seconds,
        ),
    }
    return executors[b.executor]()
