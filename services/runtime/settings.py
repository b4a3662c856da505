"""binderflow's one typed configuration: a TOML file, then BINDERFLOW_* variables.

Precedence (last wins): defaults, the TOML file, environment variables, then
command-line flags the CLI passes in. Top-level settings are read from
`BINDERFLOW_<NAME>`, a service's settings from `BINDERFLOW_<SERVICE>_<NAME>`
(e.g. BINDERFLOW_GATEWAY_PORT=9000). An invalid value stops the service with a
message that names the key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

import msgspec

__all__ = [
    "Settings",
    "GatewaySettings",
    "ResolverSettings",
    "BuilderSettings",
    "LauncherSettings",
    "NatsServerSettings",
    "EventLogSettings",
    "ProviderSettings",
    "SettingsError",
    "load_settings",
    "default_data_dir",
]

_PRIVATE_NETWORKS = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
]


class SettingsError(Exception):
    """A configuration value is invalid; the message names the key."""


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "binderflow")


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class GatewaySettings(_Section, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = msgspec.field(default=8585)
    # Public base URL clients use (BinderHub's binder_launch_host); empty: derived
    # from each request's Host header.
    public_url: str = ""
    # An SSE comment every N seconds stops proxies from closing idle streams; 0 disables.
    heartbeat_interval_seconds: float = 25.0
    # A service is "seen recently" in /health if it sent a heartbeat this recently.
    service_stale_after_seconds: float = 30.0
    # Base URL of badges in the snippets the home page shows; empty: public_url.
    badge_base_url: str = ""
    # HTML shown at the top of every page, and on the about page.
    banner_message: str = ""
    about_message: str = ""
    # BinderHub's API-only mode: /build accepts build_only=true (build, do not launch).
    enable_api_only_mode: bool = False
    # Only builds, never launches (implies enable_api_only_mode).
    require_build_only: bool = False
    # Secret that signs build tokens (JWT, HS256); empty turns build tokens off.
    build_token_secret: str = ""
    # Reject /build requests without a valid build token (needs build_token_secret).
    require_build_token: bool = False
    build_token_expires_seconds: float = 300.0
    # Client networks refused with 403: CIDR -> message shown to them.
    ban_networks: dict[str, str] = msgspec.field(default_factory=dict)


class ResolverSettings(_Section, frozen=True, kw_only=True):
    # Port of /health and /metrics; 0 picks a free port.
    http_port: int = 8586
    # URL schemes the git provider may fetch; "file" and "ext" stay off unless added.
    git_allowed_schemes: list[str] = msgspec.field(default_factory=lambda: ["https", "http", "git"])
    # Hosts (resolved addresses) in these networks are refused, against SSRF.
    git_blocked_networks: list[str] = msgspec.field(default_factory=lambda: list(_PRIVATE_NETWORKS))
    # Host names allowed even when they resolve into a blocked network (e.g. a
    # company Git server); "*" allows every host.
    git_allowed_hosts: list[str] = []
    git_timeout_seconds: float = 60.0
    # Image names are "<image_prefix><name>"; the local store ignores the prefix.
    image_prefix: str = ""
    max_concurrent: int = 16


class BuilderSettings(_Section, frozen=True, kw_only=True):
    http_port: int = 8587
    # Which executor builds environments: "local" (uv on this host).
    executor: str = "local"
    # A build still running after this long is stopped and fails; 0 means no limit.
    build_timeout_seconds: float = 1800.0
    max_concurrent_builds: int = 2
    # Package index for user environments; empty means uv's default (PyPI).
    index_url: str = ""
    # Extra directories or URLs with wheels (uv --find-links).
    find_links: list[str] = []
    # Only use find_links, never an index (an offline installation).
    no_index: bool = False
    # JupyterLab requirement installed into every environment.
    jupyterlab_requirement: str = "jupyterlab>=4"
    # uv's package cache; empty means <data_dir>/uv-cache. Share it between
    # builders on one host: environments hardlink from it.
    uv_cache_dir: str = ""
    git_timeout_seconds: float = 300.0
    # Data repositories (zenodo, figshare, ...): bytes downloaded (and unpacked) for
    # one record, and files in one record or archive. Bounded so a huge record
    # fails with a message instead of filling the disk.
    download_max_bytes: int = 5 * 1024**3
    download_max_files: int = 20_000
    # HydroShare prepares a resource's bag on demand; how long to wait for it.
    hydroshare_bag_wait_seconds: float = 120.0


class LauncherSettings(_Section, frozen=True, kw_only=True):
    http_port: int = 8588
    backend: str = "local"
    # Host name servers bind to and that their URLs use.
    server_host: str = "127.0.0.1"
    # Stop a server with no activity for this long; 0 keeps idle servers.
    idle_timeout_seconds: float = 600.0
    # Stop a server this long after it started, busy or not; 0 means no limit.
    max_age_seconds: float = 6 * 3600.0
    cull_interval_seconds: float = 30.0
    # A server that does not answer /api/status in this time fails the launch.
    start_timeout_seconds: float = 120.0
    max_servers: int = 50


class NatsServerSettings(_Section, frozen=True, kw_only=True):
    """The private nats-server that `binderflow up` starts."""

    host: str = "127.0.0.1"
    # 0 picks a free port.
    port: int = 0
    monitor_port: int = 0


class ProviderSettings(_Section, frozen=True, kw_only=True):
    """Repository providers (BinderHub's repo_providers) and where their APIs live.

    Every base URL is configurable, which also serves GitHub Enterprise and
    self-hosted GitLab, Dataverse and CKAN.
    """

    # Spec prefixes this installation serves; others fail with "No provider found".
    enabled: list[str] = msgspec.field(
        default_factory=lambda: ["gh", "gist", "gl", "git", "zenodo", "figshare", "hydroshare", "dataverse", "ckan", "doi"]
    )
    github_api_url: str = "https://api.github.com"
    # Web/clone base of GitHub (repositories are cloned from <github_url>/<owner>/<repo>).
    github_url: str = "https://github.com"
    # A token raises GitHub's rate limit; never logged or put in events.
    github_token: str = ""
    # Secret (unlisted) gists launch only when this is on, as in BinderHub.
    allow_secret_gist: bool = False
    gist_url: str = "https://gist.github.com"
    # GitLab web/clone base; its API is <gitlab_url>/api/v4.
    gitlab_url: str = "https://gitlab.com"
    gitlab_token: str = ""
    zenodo_url: str = "https://zenodo.org"
    figshare_api_url: str = "https://api.figshare.com/v2"
    figshare_url: str = "https://figshare.com"
    hydroshare_url: str = "https://www.hydroshare.org"
    # Dataverse and CKAN installations accepted (their base URLs).
    dataverse_urls: list[str] = msgspec.field(default_factory=lambda: ["https://dataverse.harvard.edu"])
    ckan_urls: list[str] = msgspec.field(default_factory=lambda: ["https://demo.ckan.org"])
    doi_resolver_url: str = "https://doi.org"
    # Provider prefix -> regular expressions of specs that are refused.
    banned_specs: dict[str, list[str]] = msgspec.field(default_factory=dict)
    # Provider prefix -> regular expressions of specs with a higher launch quota.
    high_quota_specs: dict[str, list[str]] = msgspec.field(default_factory=dict)
    http_timeout_seconds: float = 30.0
    # Cache GitHub API answers (ETag/If-None-Match) for this long; 0 disables.
    cache_seconds: float = 300.0


class EventLogSettings(_Section, frozen=True, kw_only=True):
    # Retention of the event log (oldest dropped first). The defaults keep a small
    # machine healthy: a month, at most 1 GiB on disk.
    max_age_seconds: float = 30 * 24 * 3600.0
    max_bytes: int = 1024 * 1024 * 1024
    # Messages kept per subject: caps one launch's build log (a runaway build
    # printing millions of lines loses its oldest lines, not the disk).
    max_msgs_per_subject: int = 200_000
    # Window in which a republished event (same id) is dropped as a duplicate.
    duplicate_window_seconds: float = 120.0
    # Consumers the event-log stream allows: each gateway process holds one per
    # launch it streams (plus short-lived readers). nats-server >= 2.15 caps a
    # stream at 1000 unless the stream says otherwise, which would cap a whole
    # installation at 1000 watched launches.
    max_consumers: int = 100_000
    # Copies JetStream keeps of the command and event streams and the builds
    # bucket: 1 for one nats-server (the embedded default), 3 in a NATS cluster so
    # the log survives losing a server. JetStream allows 1 to 5.
    replicas: int = 1
    commands_max_age_seconds: float = 7 * 24 * 3600.0
    commands_max_bytes: int = 256 * 1024 * 1024
    # Key that seals Jupyter tokens in the log (32 bytes, base64). Empty: a key
    # file in data_dir, made on first use; a cluster sets it from a Secret, the
    # same for the launcher and the gateway.
    token_key: str = ""
    # SSE `retry:` sent to clients: how long a browser waits before reconnecting.
    client_retry_ms: int = 2000


class TelemetrySettings(_Section, frozen=True, kw_only=True):
    # Where spans go: "none" (default), "console" (stderr) or "otlp" (HTTP).
    exporter: str = "none"
    # OTLP/HTTP traces endpoint; empty: the SDK's default (OTEL_EXPORTER_OTLP_*).
    otlp_endpoint: str = ""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    nats_url: str = "nats://127.0.0.1:4222"
    subject_prefix: str = "binderflow"
    # Where the embedded default keeps NATS data, environments and servers.
    data_dir: str = msgspec.field(default_factory=default_data_dir)
    log_level: str = "INFO"
    # Seconds between liveness heartbeats of each service.
    heartbeat_seconds: float = 5.0
    # A worker silent this long (no ack, no in-progress ack) loses its command to
    # another replica: how quickly a crashed builder's build is taken over.
    ack_wait_seconds: float = 30.0
    gateway: GatewaySettings = GatewaySettings()
    resolver: ResolverSettings = ResolverSettings()
    builder: BuilderSettings = BuilderSettings()
    launcher: LauncherSettings = LauncherSettings()
    nats: NatsServerSettings = NatsServerSettings()
    providers: ProviderSettings = ProviderSettings()
    events: EventLogSettings = EventLogSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def environments_path(self) -> Path:
        return self.data_path / "environments"

    @property
    def servers_path(self) -> Path:
        return self.data_path / "servers"


_SECTIONS = {f.name: f.type for f in msgspec.structs.fields(Settings) if isinstance(f.type, type) and issubclass(f.type, _Section)}


def _env_value(key: str, raw: str, annotation: Any) -> Any:
    """Text of an environment variable turned into JSON-ish data for msgspec."""
    if getattr(annotation, "__origin__", None) is dict or str(annotation).startswith("dict"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(f"invalid {key}: expected a JSON object ({exc})") from None
    if getattr(annotation, "__origin__", None) is list or str(annotation).startswith("list"):
        raw = raw.strip()
        if raw.startswith("["):
            try:
                return json.loads(raw)
            except json.JSONDecodeError as exc:
                raise SettingsError(f"invalid {key}: a list must be JSON or comma-separated ({exc})") from None
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in msgspec.structs.fields(Settings):
        if f.name in _SECTIONS:
            section: dict[str, Any] = {}
            for sf in msgspec.structs.fields(_SECTIONS[f.name]):
                key = f"BINDERFLOW_{f.name.upper()}_{sf.name.upper()}"
                if key in environ:
                    section[sf.name] = _env_value(key, environ[key], sf.type)
            if section:
                data[f.name] = section
        else:
            key = f"BINDERFLOW_{f.name.upper()}"
            if key in environ:
                data[f.name] = _env_value(key, environ[key], f.type)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _key_of(error: msgspec.ValidationError) -> str:
    text = str(error)
    if "`$." in text:
        path = text.split("`$.", 1)[1].rstrip("`")
        return path
    return ""


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build Settings from a TOML file, the environment and explicit overrides.

    `config_file` defaults to $BINDERFLOW_CONFIG, then ./binderflow.toml if present.
    Raises SettingsError naming the offending key.
    """
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    path = config_file or environ.get("BINDERFLOW_CONFIG")
    if not path and Path("binderflow.toml").is_file():
        path = "binderflow.toml"
    if path:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    data = _merge(data, _from_environ(environ))
    data = _merge(data, overrides or {})
    try:
        settings = msgspec.convert(data, Settings, strict=False)
    except msgspec.ValidationError as exc:
        key = _key_of(exc)
        env_name = "BINDERFLOW_" + key.replace(".", "_").upper() if key else ""
        where = f"setting '{key}' (or {env_name}): " if key else "settings: "
        raise SettingsError(f"invalid {where}{exc}") from None
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    from schemas.subjects import is_valid_prefix

    if not is_valid_prefix(settings.subject_prefix):
        raise SettingsError(
            f"invalid setting 'subject_prefix' (or BINDERFLOW_SUBJECT_PREFIX): {settings.subject_prefix!r} "
            "must be lower-case letters, digits, '-' or '_'"
        )
    for name, value in (
        ("gateway.port", settings.gateway.port),
        ("resolver.http_port", settings.resolver.http_port),
        ("builder.http_port", settings.builder.http_port),
        ("launcher.http_port", settings.launcher.http_port),
        ("nats.port", settings.nats.port),
        ("nats.monitor_port", settings.nats.monitor_port),
    ):
        if not 0 <= value <= 65535:
            raise SettingsError(f"invalid setting '{name}': {value} is not a TCP port (0-65535)")
    if settings.builder.executor not in ("local",):
        raise SettingsError(
            f"invalid setting 'builder.executor': {settings.builder.executor!r}; known executors: local"
        )
    if settings.launcher.backend not in ("local",):
        raise SettingsError(
            f"invalid setting 'launcher.backend': {settings.launcher.backend!r}; known backends: local"
        )
    import ipaddress

    for net in settings.resolver.git_blocked_networks:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise SettingsError(f"invalid setting 'resolver.git_blocked_networks': {net!r} is not a CIDR network") from None
    for field, table in (("providers.banned_specs", settings.providers.banned_specs),
                         ("providers.high_quota_specs", settings.providers.high_quota_specs)):
        for prefix, patterns in table.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise SettingsError(f"invalid setting '{field}': {prefix}: {pattern!r} is not a regular expression ({exc})") from None
    for name, value in (("builder.download_max_bytes", settings.builder.download_max_bytes),
                        ("builder.download_max_files", settings.builder.download_max_files)):
        if value <= 0:
            raise SettingsError(f"invalid setting '{name}': {value} must be positive")
    if settings.telemetry.exporter not in ("none", "console", "otlp"):
        raise SettingsError(
            f"invalid setting 'telemetry.exporter': {settings.telemetry.exporter!r}; use none, console or otlp"
        )
    for name, number in (("events.max_age_seconds", settings.events.max_age_seconds), ("events.max_bytes", settings.events.max_bytes),
                         ("events.max_msgs_per_subject", settings.events.max_msgs_per_subject),
                         ("events.max_consumers", settings.events.max_consumers)):
        if number <= 0:
            raise SettingsError(f"invalid setting '{name}': {number} must be positive")
    if not 1 <= settings.events.replicas <= 5:
        raise SettingsError(f"invalid setting 'events.replicas': {settings.events.replicas}; JetStream keeps 1 to 5 copies")
    if settings.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"invalid setting 'log_level': {settings.log_level!r}")
