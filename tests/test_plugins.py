"""Plug-in points declared once: registered names and `module:Class` import strings, checked at start-up."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from schemas import LaunchRequest, ResolvedRepo
from services.builder.executors import BuildExecutor, make_executor
from services.builder.executors.base import BuildFinished
from services.launcher.backends import LauncherBackend, make_backend
from services.resolver.providers import RepoProvider, make_providers
from services.runtime.plugins import EXECUTORS, LAUNCHER_BACKENDS, PROVIDER_CLASSES, PluginError, load_plugin, protocol_members
from services.runtime.settings import SettingsError, load_settings

from .plugins import AlwaysBuiltExecutor, FixedCommitProvider, UnreachableServerBackend

REPO = ResolvedRepo(
    repo_url="https://example.org/r", ref="HEAD", resolved_ref="a" * 40, ref_url="https://example.org/r", clone_url="https://example.org/r",
    image_name="example-org-r-0123456789abcdef", binder_request="v2/git/x/HEAD", binder_persistent_request="v2/git/x/" + "a" * 40,
)


@pytest.mark.parametrize(
    ("setting", "registry", "protocol"),
    [("builder.executor", EXECUTORS, BuildExecutor), ("launcher.backend", LAUNCHER_BACKENDS, LauncherBackend), ("providers.enabled", PROVIDER_CLASSES, RepoProvider)],
)
def test_every_registered_implementation_loads_and_has_all_its_protocol_declares(setting: str, registry: dict[str, str], protocol: type) -> None:
    assert {"from_settings"} <= set(protocol_members(protocol))
    for name in registry:
        cls = load_plugin(setting, name, registry, protocol)
        assert all(hasattr(cls, member) for member in protocol_members(protocol)), name


def test_each_provider_class_serves_the_prefix_it_is_registered_under() -> None:
    for prefix in PROVIDER_CLASSES:
        assert load_plugin("providers.enabled", prefix, PROVIDER_CLASSES, RepoProvider).name == prefix


async def test_an_executor_named_by_import_string_is_built_from_settings_and_builds(tmp_path) -> None:
    settings = load_settings(environ={"BINDERFLOW_BUILDER_EXECUTOR": "tests.plugins:AlwaysBuiltExecutor", "BINDERFLOW_DATA_DIR": str(tmp_path)})
    executor = make_executor(settings)
    assert isinstance(executor, AlwaysBuiltExecutor)
    progress = [p async for p in executor.build(REPO)]
    assert progress[-1] == BuildFinished(image_name=REPO.image_name, was_cached=True)


async def test_a_launcher_backend_named_by_import_string_is_built_from_settings(tmp_path) -> None:
    settings = load_settings(environ={"BINDERFLOW_LAUNCHER_BACKEND": "tests.plugins:UnreachableServerBackend", "BINDERFLOW_DATA_DIR": str(tmp_path)})
    backend = make_backend(settings)
    assert isinstance(backend, UnreachableServerBackend) and await backend.adopt() == 0
    server = await backend.start("launch-1234", REPO, LaunchRequest(provider="git", spec="x/HEAD"))
    assert server.url == "http://127.0.0.1:9/" and backend.running == 1
    assert await backend.cull(datetime.now(timezone.utc)) == []


async def test_an_operator_plugs_in_a_provider_under_a_prefix_of_its_own() -> None:
    settings = load_settings(environ={"BINDERFLOW_PROVIDERS_CLASSES": '{"fixed": "tests.plugins:FixedCommitProvider"}', "BINDERFLOW_PROVIDERS_ENABLED": "git,fixed"})
    providers = make_providers(settings)
    assert list(providers) == ["git", "fixed"]
    fixed = providers["fixed"]
    assert isinstance(fixed, FixedCommitProvider) and set(fixed.others()) == {"git", "fixed"}
    assert (await fixed.resolve("any/thing")).resolved_ref == "f" * 40
    for provider in providers.values():
        await provider.aclose()


def test_a_class_that_lacks_a_protocol_method_is_refused_at_start_naming_the_setting(tmp_path) -> None:
    settings = load_settings(environ={"BINDERFLOW_BUILDER_EXECUTOR": "tests.plugins:HalfAnExecutor", "BINDERFLOW_DATA_DIR": str(tmp_path)})
    with pytest.raises(PluginError, match=r"'builder\.executor'.*lacks build"):
        make_executor(settings)


@pytest.mark.parametrize(
    ("value", "message"),
    [("tests.plugins:NoSuchClass", "has no class NoSuchClass"), ("tests.no_such_module:X", "cannot import tests.no_such_module")],
)
def test_an_import_string_naming_nothing_is_refused_at_start(value: str, message: str) -> None:
    settings = load_settings(environ={"BINDERFLOW_LAUNCHER_BACKEND": value})
    with pytest.raises(PluginError, match=message):
        make_backend(settings)


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"BINDERFLOW_BUILDER_EXECUTOR": "docker"}, "builder.executor"),
        ({"BINDERFLOW_LAUNCHER_BACKEND": "not an import string"}, "launcher.backend"),
        ({"BINDERFLOW_PROVIDERS_ENABLED": "gh,nope"}, "providers.enabled"),
        ({"BINDERFLOW_PROVIDERS_CLASSES": '{"x": "not-a-class"}'}, "providers.classes.x"),
    ],
)
def test_names_that_are_neither_registered_nor_import_strings_fail_when_settings_load(environ: dict[str, str], key: str) -> None:
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_settings(environ=environ)
