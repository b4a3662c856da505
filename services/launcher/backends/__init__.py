"""Launcher backends, side by side; `make_backend` builds the one settings name."""

from __future__ import annotations

from services.runtime.plugins import LAUNCHER_BACKENDS, load_plugin
from services.runtime.settings import Settings

from .base import LaunchError, LauncherBackend, RunningServer

__all__ = ["LaunchError", "LauncherBackend", "RunningServer", "make_backend"]


def make_backend(settings: Settings) -> LauncherBackend:
    """The backend `launcher.backend` names (services.runtime.plugins.LAUNCHER_BACKENDS or
    a `module:Class`); PluginError when it names nothing usable."""
    backend_class: type[LauncherBackend] = load_plugin("launcher.backend", settings.launcher.backend, LAUNCHER_BACKENDS, LauncherBackend)
    return backend_class.from_settings(settings)
