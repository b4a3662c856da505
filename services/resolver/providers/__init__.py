"""Repository providers, chosen by the spec's prefix (`gh`, `git`, `zenodo`, `doi`, ...).

Which class serves a prefix is declared once, in services.runtime.plugins
(PROVIDER_CLASSES, plus the operator's `providers.classes`); how a provider is
described to people and clients, in schemas.providers.
"""

from __future__ import annotations

from typing import Mapping

from services.runtime.plugins import PROVIDER_CLASSES, load_plugin
from services.runtime.settings import Settings

from .base import ProviderDirectory, ProviderError, RepoProvider, ResolvedSource

__all__ = ["ProviderError", "RepoProvider", "ResolvedSource", "ProviderDirectory", "make_providers"]


def make_providers(settings: Settings) -> dict[str, RepoProvider]:
    """The providers this resolver serves (`providers.enabled`), keyed by spec prefix.

    Raises PluginError naming the setting when a class cannot be loaded.
    """
    registry: Mapping[str, str] = {**PROVIDER_CLASSES, **settings.providers.classes}
    made: dict[str, RepoProvider] = {}

    def directory() -> Mapping[str, RepoProvider]:
        return made

    for prefix in dict.fromkeys(settings.providers.enabled):
        setting = f"providers.classes.{prefix}" if prefix in settings.providers.classes else "providers.enabled"
        provider_class: type[RepoProvider] = load_plugin(setting, registry[prefix], registry, RepoProvider)
        made[prefix] = provider_class.from_settings(settings, directory)
    return made
