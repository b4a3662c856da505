"""Build executors, side by side; `make_executor` builds the one settings name."""

from __future__ import annotations

from services.runtime.plugins import EXECUTORS, load_plugin
from services.runtime.settings import Settings

from .base import BuildError, BuildExecutor, BuildFinished, BuildProgress, LogLine, PhaseChanged

__all__ = ["BuildError", "BuildExecutor", "BuildFinished", "BuildProgress", "LogLine", "PhaseChanged", "make_executor"]


def make_executor(settings: Settings) -> BuildExecutor:
    """The executor `builder.executor` names (services.runtime.plugins.EXECUTORS or a
    `module:Class`); PluginError when it names nothing usable."""
    executor_class: type[BuildExecutor] = load_plugin("builder.executor", settings.builder.executor, EXECUTORS, BuildExecutor)
    return executor_class.from_settings(settings)
