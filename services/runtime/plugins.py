"""Plug-in points: every pluggable implementation named once, and how a name becomes a class.

Three things are pluggable, each behind a small Protocol in its service:
build executors (`builder.executor`), launcher backends (`launcher.backend`)
and repository providers (`providers.enabled`, plus `providers.classes`). A
setting names a registered implementation, or gives a `module:Class` import
string, as JupyterHub's `spawner_class` does, so a third party (or `bench/`)
plugs in its own class without editing binderflow.

The registries hold import strings, not classes: settings check names without
importing any service, and a service imports only what it runs. `load_plugin`
imports a class when its service starts and checks it against the Protocol,
so a class that lacks a method fails at start with a message naming the
setting, not halfway through a launch. Every class is built the same way:
`Class.from_settings(settings, ...)`.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Mapping

__all__ = [
    "EXECUTORS",
    "LAUNCHER_BACKENDS",
    "PROVIDER_CLASSES",
    "PluginError",
    "is_import_string",
    "check_plugin_name",
    "load_plugin",
    "protocol_members",
]

EXECUTORS: Mapping[str, str] = {
    # uv environments on this host, run by the launcher's local backend.
    "local": "services.builder.executors.local:LocalExecutor",
}

LAUNCHER_BACKENDS: Mapping[str, str] = {
    # JupyterLab processes on this host.
    "local": "services.launcher.backends.local:LocalBackend",
}

# Spec prefix -> the resolver's implementation. The prefixes are the catalogue's
# (schemas.providers.PROVIDERS); a test fails when the two disagree.
PROVIDER_CLASSES: Mapping[str, str] = {
    "gh": "services.resolver.providers.github:GitHubProvider",
    "gist": "services.resolver.providers.gist:GistProvider",
    "gl": "services.resolver.providers.gitlab:GitLabProvider",
    "git": "services.resolver.providers.git:GitProvider",
    "zenodo": "services.resolver.providers.zenodo:ZenodoProvider",
    "figshare": "services.resolver.providers.figshare:FigshareProvider",
    "hydroshare": "services.resolver.providers.hydroshare:HydroshareProvider",
    "dataverse": "services.resolver.providers.dataverse:DataverseProvider",
    "ckan": "services.resolver.providers.ckan:CKANProvider",
    "doi": "services.resolver.providers.doi:DoiProvider",
}

_IMPORT_STRING_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*\Z")

class PluginError(Exception):
    """A plug-in setting names nothing usable; the message names the setting."""


def is_import_string(value: str) -> bool:
    """True for `package.module:Class`."""
    return bool(_IMPORT_STRING_RE.match(value))


def check_plugin_name(setting: str, value: str, registry: Mapping[str, str]) -> None:
    """Raise PluginError unless `value` is a registered name or an import string. Imports nothing."""
    if value in registry or is_import_string(value):
        return
    known = ", ".join(sorted(registry))
    raise PluginError(f"invalid setting '{setting}': {value!r} is neither one of {known} nor a 'module:Class' import string")


def protocol_members(protocol: type) -> list[str]:
    """The public names a Protocol declares (methods, properties and attributes)."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass is object or klass.__name__ in ("Protocol", "Generic"):
            continue
        names.update(name for name in vars(klass) if not name.startswith("_"))
        names.update(name for name in getattr(klass, "__annotations__", {}) if not name.startswith("_"))
    return sorted(names)


def load_plugin(setting: str, value: str, registry: Mapping[str, str], protocol: type) -> Any:
    """The class `value` names (a registered name or `module:Class`), checked against `protocol`
    (a typing.Protocol; the caller annotates the result as `type[ThatProtocol]`).

    Raises PluginError naming `setting` when it cannot be imported or lacks a
    member the protocol declares.
    """
    check_plugin_name(setting, value, registry)
    target = registry.get(value, value)
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"invalid setting '{setting}': cannot import {module_name} ({exc})") from None
    found: Any = getattr(module, class_name, None)
    if not inspect.isclass(found):
        raise PluginError(f"invalid setting '{setting}': {module_name} has no class {class_name}")
    missing = [name for name in protocol_members(protocol) if not hasattr(found, name)]
    if missing:
        raise PluginError(
            f"invalid setting '{setting}': {target} is not a {protocol.__name__}: it lacks {', '.join(missing)}"
        )
    return found
