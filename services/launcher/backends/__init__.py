"""Launcher backends, side by side; `make_backend` picks one from settings."""

from __future__ import annotations

from services.runtime.environments import LocalEnvironmentStore
from services.runtime.settings import Settings

from .base import LaunchError, LauncherBackend, RunningServer
from .local import LocalBackend, stop_recorded_servers

__all__ = ["LaunchError", "LauncherBackend", "RunningServer", "LocalBackend", "make_backend", "stop_recorded_servers"]


def make_backend(settings: Settings) -> LauncherBackend:
    s = settings.launcher
    backends = {
        "local": lambda: LocalBackend(
            LocalEnvironmentStore(settings.environments_path),
            settings.servers_path,
            host=s.server_host,
            start_timeout_seconds=s.start_timeout_seconds,
            idle_timeout_seconds=s.idle_timeout_seconds,
            max_age_seconds=s.max_age_seconds,
            max_servers=s.max_servers,
        ),
    }
    return backends[s.backend]()
