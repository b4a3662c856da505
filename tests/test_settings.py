"""Settings: defaults, then the TOML file, then BINDERFLOW_* variables; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.runtime.settings import Settings, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _no_stray_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings falls back to ./binderflow.toml; run where there is none.
    monkeypatch.chdir(tmp_path)


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    s = load_settings(environ={})
    assert isinstance(s, Settings)
    assert s.nats_url == "nats://127.0.0.1:4222"
    assert s.subject_prefix == "binderflow"
    assert s.log_level == "INFO"
    assert s.gateway.host == "127.0.0.1"
    assert s.gateway.port == 8585
    assert s.builder.executor == "local"
    assert s.launcher.backend == "local"
    assert s.builder.find_links == []
    assert s.resolver.git_allowed_schemes == ["https", "http", "git"]
    # Non-public addresses are refused whatever this list says; it only adds networks.
    assert s.resolver.git_blocked_networks == []
    assert s.resolver.git_allowed_hosts == []


def test_toml_file_overrides_defaults(tmp_path: Path) -> None:
    path = _toml(tmp_path, 'subject_prefix = "mine"\n[gateway]\nhost = "0.0.0.0"\nport = 9000\n[builder]\nno_index = true\n')
    s = load_settings(path, environ={})
    assert s.subject_prefix == "mine"
    assert s.gateway.host == "0.0.0.0"
    assert s.gateway.port == 9000
    assert s.builder.no_index is True
    assert s.launcher.max_servers == 50


def test_environment_overrides_toml_key_by_key(tmp_path: Path) -> None:
    path = _toml(tmp_path, '[gateway]\nhost = "0.0.0.0"\nport = 9000\n')
    s = load_settings(path, environ={"BINDERFLOW_GATEWAY_PORT": "9100"})
    assert s.gateway.port == 9100
    assert s.gateway.host == "0.0.0.0"  # the rest of the section still comes from the file


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[launcher]\nmax_servers = 3\n")
    assert load_settings(environ={"BINDERFLOW_CONFIG": str(path)}).launcher.max_servers == 3


def test_overrides_win_over_environment() -> None:
    s = load_settings(environ={"BINDERFLOW_GATEWAY_PORT": "9100"}, overrides={"gateway": {"port": 9200}})
    assert s.gateway.port == 9200


def test_top_level_and_section_variables() -> None:
    s = load_settings(
        environ={
            "BINDERFLOW_NATS_URL": "nats://10.0.0.1:4222",
            "BINDERFLOW_HEARTBEAT_SECONDS": "2.5",
            "BINDERFLOW_GATEWAY_PORT": "9000",
            "BINDERFLOW_BUILDER_NO_INDEX": "true",
            "BINDERFLOW_LAUNCHER_IDLE_TIMEOUT_SECONDS": "0",
        }
    )
    assert s.nats_url == "nats://10.0.0.1:4222"
    assert s.heartbeat_seconds == 2.5
    assert s.gateway.port == 9000
    assert s.builder.no_index is True
    assert s.launcher.idle_timeout_seconds == 0


def test_unrelated_variables_are_ignored() -> None:
    s = load_settings(environ={"BINDERFLOW_NOT_A_SETTING": "x", "PATH": "/bin", "GATEWAY_PORT": "1"})
    assert s.gateway.port == 8585


def test_list_variable_comma_separated() -> None:
    s = load_settings(environ={"BINDERFLOW_RESOLVER_GIT_ALLOWED_HOSTS": " git.example.org, ,gitlab.local ", "BINDERFLOW_BUILDER_FIND_LINKS": "/w1,/w2"})
    assert s.resolver.git_allowed_hosts == ["git.example.org", "gitlab.local"]
    assert s.builder.find_links == ["/w1", "/w2"]


def test_list_variable_json() -> None:
    s = load_settings(environ={"BINDERFLOW_RESOLVER_GIT_BLOCKED_NETWORKS": '["10.0.0.0/8", "192.168.0.0/16"]'})
    assert s.resolver.git_blocked_networks == ["10.0.0.0/8", "192.168.0.0/16"]


def test_empty_list_variable_clears_the_list() -> None:
    assert load_settings(environ={"BINDERFLOW_RESOLVER_GIT_BLOCKED_NETWORKS": ""}).resolver.git_blocked_networks == []


def test_invalid_json_list_names_the_variable() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"BINDERFLOW_RESOLVER_GIT_ALLOWED_HOSTS": '["unterminated'})
    message = str(info.value)
    assert "BINDERFLOW_RESOLVER_GIT_ALLOWED_HOSTS" in message or "resolver.git_allowed_hosts" in message


def test_invalid_int_names_the_key() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"BINDERFLOW_GATEWAY_PORT": "not-a-port"})
    assert "gateway.port" in str(info.value)
    assert "BINDERFLOW_GATEWAY_PORT" in str(info.value)


def test_invalid_int_in_toml_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"launcher\.max_servers"):
        load_settings(_toml(tmp_path, '[launcher]\nmax_servers = "many"\n'), environ={})


def test_stream_replicas_are_what_jetstream_allows() -> None:
    assert load_settings(environ={"BINDERFLOW_EVENTS_REPLICAS": "3"}).events.replicas == 3
    for bad in ("0", "6"):
        with pytest.raises(SettingsError, match=r"events\.replicas.*1 to 5"):
            load_settings(environ={"BINDERFLOW_EVENTS_REPLICAS": bad})


def test_port_out_of_range_names_the_key() -> None:
    with pytest.raises(SettingsError, match=r"gateway\.port"):
        load_settings(environ={"BINDERFLOW_GATEWAY_PORT": "70000"})


def test_unknown_key_in_toml_section_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="prot"):
        load_settings(_toml(tmp_path, "[gateway]\nprot = 9000\n"), environ={})


def test_unknown_top_level_key_in_toml_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="gatway"):
        load_settings(_toml(tmp_path, "[gatway]\nport = 9000\n"), environ={})


def test_invalid_toml_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(_toml(tmp_path, "[gateway\nport = \n"), environ={})


def test_missing_config_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_unknown_executor_is_rejected() -> None:
    with pytest.raises(SettingsError, match=r"builder\.executor"):
        load_settings(environ={"BINDERFLOW_BUILDER_EXECUTOR": "docker"})


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(SettingsError, match=r"launcher\.backend"):
        load_settings(environ={"BINDERFLOW_LAUNCHER_BACKEND": "kubernetes"})


@pytest.mark.parametrize("net", ["not-a-network", "10.0.0.0/33", "300.1.1.1/8"])
def test_bad_cidr_is_rejected(net: str) -> None:
    with pytest.raises(SettingsError, match=r"resolver\.git_blocked_networks"):
        load_settings(environ={"BINDERFLOW_RESOLVER_GIT_BLOCKED_NETWORKS": f"10.0.0.0/8,{net}"})


@pytest.mark.parametrize("prefix", ["Binderflow", "a.b", "a b", "", "-x", "x>", "a*", "x" * 65])
def test_bad_subject_prefix_is_rejected(prefix: str) -> None:
    with pytest.raises(SettingsError, match="subject_prefix"):
        load_settings(environ={"BINDERFLOW_SUBJECT_PREFIX": prefix})


def test_bad_log_level_is_rejected() -> None:
    with pytest.raises(SettingsError, match="log_level"):
        load_settings(environ={"BINDERFLOW_LOG_LEVEL": "LOUD"})


def test_derived_paths_follow_data_dir(tmp_path: Path) -> None:
    s = load_settings(environ={"BINDERFLOW_DATA_DIR": str(tmp_path / "d")})
    assert s.data_path == (tmp_path / "d").resolve()
    assert s.environments_path == s.data_path / "environments"
    assert s.servers_path == s.data_path / "servers"
