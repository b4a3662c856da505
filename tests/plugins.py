"""Plug-ins a third party could write: real implementations of binderflow's Protocols,
named for their behaviour, loaded by `module:Class` import strings in tests/test_plugins.py.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import AsyncIterator, Mapping

from schemas import LaunchRequest, ResolvedRepo
from services.builder.executors.base import BuildFinished, BuildProgress, LogLine
from services.launcher.backends.base import RunningServer
from services.resolver.providers.base import ProviderDirectory, ProviderError, RepoProvider, ResolvedSource
from services.runtime.settings import Settings


class AlwaysBuiltExecutor:
    """Says every environment is built, after one log line: a stand-in for a remote build service."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "AlwaysBuiltExecutor":
        return cls()

    async def build(self, repo: ResolvedRepo) -> AsyncIterator[BuildProgress]:
        yield LogLine(f"{repo.image_name} is built elsewhere")
        yield BuildFinished(image_name=repo.image_name, was_cached=True)


class UnreachableServerBackend:
    """Starts nothing: every server it reports is at one fixed URL (a launcher for API tests)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.started: dict[str, RunningServer] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "UnreachableServerBackend":
        return cls(f"http://{settings.launcher.server_host}:9/")

    @property
    def running(self) -> int:
        return len(self.started)

    async def adopt(self) -> int:
        return 0

    async def start(self, launch_id: str, repo: ResolvedRepo, request: LaunchRequest) -> RunningServer:
        server = RunningServer(launch_id=launch_id, url=self.url, token="t", image=repo.image_name, started_at=datetime.now(timezone.utc))
        self.started[launch_id] = server
        return server

    async def cull(self, now: datetime) -> list[str]:
        return []

    async def stop_all(self) -> None:
        self.started.clear()


class FixedCommitProvider:
    """A provider for prefix `fixed`: every spec names one repository at one commit."""

    name = "fixed"

    def __init__(self, others: ProviderDirectory) -> None:
        self._others = others

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "FixedCommitProvider":
        return cls(directory)

    def others(self) -> Mapping[str, RepoProvider]:
        return self._others()

    async def resolve(self, spec: str) -> ResolvedSource:
        if spec.startswith("-"):
            raise ProviderError(f"{spec!r} is not a fixed spec")
        url = f"https://example.org/{spec}"
        return ResolvedSource(repo_url=url, ref="HEAD", resolved_ref="f" * 40, ref_url=url, clone_url=url, persistent_spec=spec)

    async def aclose(self) -> None:
        return None


class HalfAnExecutor:
    """Has from_settings, lacks build: what the start-up check must refuse."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "HalfAnExecutor":
        return cls()
