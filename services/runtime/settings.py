"""binderflow's one typed configuration: a TOML file, then BINDERFLOW_* variables.

Precedence (last wins): defaults, the TOML file, environment variables, then
command-line flags the CLI passes in. Top-level settings are read from
`BINDERFLOW_<NAME>`, a service's settings from `BINDERFLOW_<SERVICE>_<NAME>`
(e.g. BINDERFLOW_GATEWAY_PORT=9000). An invalid value stops the service with a
message that names the key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import msgspec
from msgspec import Meta

from schemas.providers import PROVIDER_PREFIXES
from schemas.subjects import PREFIX_PATTERN

from .limits import ResourceLimits
from .plugins import EXECUTORS, LAUNCHER_BACKENDS, PROVIDER_CLASSES, PluginError, check_plugin_name

__all__ = [
    "Settings",
    "GatewaySettings",
    "ResolverSettings",
    "BuilderSettings",
    "LauncherSettings",
    "NatsServerSettings",
    "EventLogSettings",
    "LimitSettings",
    "ProviderSettings",
    "SettingsError",
    "load_settings",
    "default_data_dir",
]



class SettingsError(Exception):
    """A configuration value is invalid; the message names the key."""


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "binderflow")


# Value rules the types can state; msgspec checks them when settings are
# loaded, and the error names the key. The rest (regular expressions, CIDR
# networks, plug-in names) is checked by _check below.
Port = Annotated[int, Meta(ge=0, le=65535, description="a TCP port (0-65535); 0 picks a free one")]
PositiveInt = Annotated[int, Meta(gt=0, description="must be positive")]
PositiveSeconds = Annotated[float, Meta(gt=0, description="must be positive")]
Replicas = Annotated[int, Meta(ge=1, le=5, description="JetStream keeps 1 to 5 copies")]
LogLevel = Annotated[str, Meta(pattern=r"(?i)^(debug|info|warning|error)\Z", description="DEBUG, INFO, WARNING or ERROR")]
SubjectPrefix = Annotated[str, Meta(pattern=PREFIX_PATTERN, description="1-64 lower-case letters, digits, '-' or '_'")]


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class GatewaySettings(_Section, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: Port = 8585
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
    # Where `binderflow launch` and `binderflow logs` reach the gateway; empty:
    # public_url, else http://<host>:<port> (127.0.0.1 when host is 0.0.0.0).
    url: str = ""

    @property
    def client_url(self) -> str:
        """The gateway's URL for clients on this machine (the CLI)."""
        if self.url:
            return self.url
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


class ResolverSettings(_Section, frozen=True, kw_only=True):
    # Port of /health and /metrics; 0 picks a free port.
    http_port: Port = 8586
    # URL schemes the git provider may fetch; "file" and "ext" stay off unless added.
    git_allowed_schemes: list[str] = msgspec.field(default_factory=lambda: ["https", "http", "git"])
    # Repositories and downloads are fetched from globally routable addresses only
    # (loopback, private, link-local, reserved, multicast and their IPv6 wrappings
    # are always refused, against SSRF: services/runtime/addresses.py); these
    # networks are refused on top.
    git_blocked_networks: list[str] = []
    # Host names fetched from whatever they resolve to (e.g. a company Git server
    # in a private network); "*" turns the address check off.
    git_allowed_hosts: list[str] = []
    git_timeout_seconds: float = 60.0
    # Image names are "<image_prefix><name>"; the local store ignores the prefix.
    image_prefix: str = ""
    # Launches this resolver process resolves at once.
    max_concurrent: PositiveInt = 16


class BuilderSettings(_Section, frozen=True, kw_only=True):
    http_port: Port = 8587
    # Which executor builds environments: a name in services.runtime.plugins.EXECUTORS
    # ("local": uv on this host) or a "module:Class" import string.
    executor: str = "local"
    # A build still running after this long is stopped and fails; 0 means no limit.
    build_timeout_seconds: float = 1800.0
    # Builds this builder process runs at once.
    max_concurrent_builds: PositiveInt = 2
    # Package index for user environments; empty means uv's default (PyPI).
    index_url: str = ""
    # Extra directories or URLs with wheels (uv --find-links).
    find_links: list[str] = []
    # Only use find_links, never an index (an offline installation).
    no_index: bool = False
    # JupyterLab requirement installed into every environment.
    jupyterlab_requirement: str = "jupyterlab>=4"
    # uv's package cache; empty means <data_dir>/uv-cache. Builds read it through
    # a private layer (services/runtime/sandbox.py); only the JupyterLab stack,
    # installed from wheels outside any sandbox, is written to it.
    uv_cache_dir: str = ""
    git_timeout_seconds: float = 300.0
    # Data repositories (zenodo, figshare, ...): bytes downloaded (and unpacked) for
    # one record, and files in one record or archive. Bounded so a huge record
    # fails with a message instead of filling the disk.
    download_max_bytes: PositiveInt = 5 * 1024**3
    download_max_files: PositiveInt = 20_000
    # HydroShare prepares a resource's bag on demand; how long to wait for it.
    hydroshare_bag_wait_seconds: float = 120.0
    # How much of one build's output its log shows: past either limit the rest is
    # not published (the build goes on, and its log says how much was left out),
    # so one build cannot push other launches' events out of the event log.
    max_log_lines: PositiveInt = 100_000
    max_log_bytes: PositiveInt = 16 * 1024 * 1024


class LauncherSettings(_Section, frozen=True, kw_only=True):
    http_port: Port = 8588
    # Which backend runs servers: a name in services.runtime.plugins.LAUNCHER_BACKENDS
    # ("local": JupyterLab processes on this host) or a "module:Class" import string.
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
    # Servers this launcher process runs at once; more launches fail with a message.
    max_servers: PositiveInt = 50
    # Servers this launcher process starts at once (each start waits for JupyterLab to answer).
    max_concurrent_starts: PositiveInt = 8


class NatsServerSettings(_Section, frozen=True, kw_only=True):
    """The private nats-server that `binderflow up` starts."""

    host: str = "127.0.0.1"
    # 0 picks a free port.
    port: Port = 0
    monitor_port: Port = 0


class ProviderSettings(_Section, frozen=True, kw_only=True):
    """Repository providers (BinderHub's repo_providers) and where their APIs live.

    Every base URL is configurable, which also serves GitHub Enterprise and
    self-hosted GitLab, Dataverse and CKAN.
    """

    # Spec prefixes this installation serves, in the order the home page lists
    # them; others fail with "No provider found". Each is a prefix of the
    # catalogue (schemas.providers) or of `classes`.
    enabled: list[str] = msgspec.field(default_factory=lambda: list(PROVIDER_PREFIXES))
    # Providers plugged in by the operator (BinderHub's repo_providers): spec
    # prefix -> "module:Class" implementing the resolver's RepoProvider. A
    # catalogue prefix listed here is served by that class instead.
    classes: dict[str, str] = msgspec.field(default_factory=dict)
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
    http_timeout_seconds: PositiveSeconds = 30.0
    # Cache GitHub API answers (ETag/If-None-Match) for this long; 0 disables.
    cache_seconds: float = 300.0


class EventLogSettings(_Section, frozen=True, kw_only=True):
    # Retention of the event log (oldest dropped first). The defaults keep a small
    # machine healthy: a month, at most 1 GiB on disk.
    max_age_seconds: PositiveSeconds = 30 * 24 * 3600.0
    max_bytes: PositiveInt = 1024 * 1024 * 1024
    # Messages kept per subject: caps one launch's build log (a runaway build
    # printing millions of lines loses its oldest lines, not the disk).
    max_msgs_per_subject: PositiveInt = 200_000
    # Window in which a republished event (same id) is dropped as a duplicate.
    duplicate_window_seconds: float = 120.0
    # Consumers the event-log stream allows: each gateway process holds one per
    # launch it streams (plus short-lived readers). nats-server >= 2.15 caps a
    # stream at 1000 unless the stream says otherwise, which would cap a whole
    # installation at 1000 watched launches.
    max_consumers: PositiveInt = 100_000
    # Copies JetStream keeps of the command and event streams and the builds
    # bucket: 1 for one nats-server (the embedded default), 3 in a NATS cluster so
    # the log survives losing a server. JetStream allows 1 to 5.
    replicas: Replicas = 1
    commands_max_age_seconds: float = 7 * 24 * 3600.0
    commands_max_bytes: int = 256 * 1024 * 1024
    # Key that seals Jupyter tokens in the log (32 bytes, base64). Empty: a key
    # file in data_dir, made on first use; a cluster sets it from a Secret, the
    # same for the launcher and the gateway.
    token_key: str = ""
    # SSE `retry:` sent to clients: how long a browser waits before reconnecting.
    client_retry_ms: int = 2000


GiB = 1024**3


class LimitSettings(_Section, frozen=True, kw_only=True):
    """What one build (all processes of a build step together) and one server may use.

    Enforced with a control group per process tree where the host allows it (as
    root), else per process (services/runtime/limits.py). The defaults follow
    mybinder.org's (2 GiB per server) with room for compiling packages in builds.
    """

    build_memory_bytes: PositiveInt = 4 * GiB
    build_max_processes: PositiveInt = 1024
    # Largest single file a build may write.
    build_max_file_bytes: PositiveInt = 4 * GiB
    server_memory_bytes: PositiveInt = 2 * GiB
    server_max_processes: PositiveInt = 512
    server_max_file_bytes: PositiveInt = 2 * GiB
    # The private /tmp of each build step and server (memory-backed, so it counts
    # against the memory limit too).
    tmp_bytes: PositiveInt = 1 * GiB

    @property
    def build(self) -> ResourceLimits:
        return ResourceLimits(self.build_memory_bytes, self.build_max_processes, self.build_max_file_bytes)

    @property
    def server(self) -> ResourceLimits:
        return ResourceLimits(self.server_memory_bytes, self.server_max_processes, self.server_max_file_bytes)


class TelemetrySettings(_Section, frozen=True, kw_only=True):
    # Where spans go: "none" (default), "console" (stderr) or "otlp" (HTTP).
    exporter: Literal["none", "console", "otlp"] = "none"
    # OTLP/HTTP traces endpoint; empty: the SDK's default (OTEL_EXPORTER_OTLP_*).
    otlp_endpoint: str = ""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    nats_url: str = "nats://127.0.0.1:4222"
    # This process's broker user and password (services/runtime/brokerauth.py);
    # `binderflow up` sets them for each service, a cluster from a Secret. Empty:
    # connect without credentials (a broker that requires none).
    nats_user: str = ""
    nats_password: str = ""
    # Every subject, stream and consumer name starts with it (schemas.subjects).
    subject_prefix: SubjectPrefix = "binderflow"
    # Where the embedded default keeps NATS data, environments and servers.
    data_dir: str = msgspec.field(default_factory=default_data_dir)
    log_level: LogLevel = "INFO"
    # Address the resolver, builder and launcher serve /health and /metrics on
    # (0.0.0.0 in a pod, so probes and scrapes reach them; the gateway has gateway.host).
    http_host: str = "127.0.0.1"
    # Seconds between liveness heartbeats of each service.
    heartbeat_seconds: float = 5.0
    # A worker silent this long (no ack, no in-progress ack) loses its command to
    # another replica: how quickly a crashed builder's build is taken over.
    ack_wait_seconds: float = 30.0
    # Where repository code (build steps, Jupyter servers) runs: "bubblewrap", in a
    # sandbox of its own (services/runtime/sandbox.py); or "none", with the
    # services' own rights, for a machine that trusts every repository it builds.
    sandbox: Literal["bubblewrap", "none"] = "bubblewrap"
    gateway: GatewaySettings = GatewaySettings()
    resolver: ResolverSettings = ResolverSettings()
    builder: BuilderSettings = BuilderSettings()
    launcher: LauncherSettings = LauncherSettings()
    nats: NatsServerSettings = NatsServerSettings()
    providers: ProviderSettings = ProviderSettings()
    events: EventLogSettings = EventLogSettings()
    limits: LimitSettings = LimitSettings()
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


def _rule_of(key: str) -> str:
    """The description of the value rule on setting `key` ("events.replicas"), or ""."""
    struct: Any = Settings
    annotation: Any = None
    for name in key.split("."):
        fields = {f.name: f.type for f in msgspec.structs.fields(struct)} if isinstance(struct, type) and issubclass(struct, msgspec.Struct) else {}
        if name not in fields:
            return ""
        annotation = fields[name]
        struct = annotation
    for extra in typing.get_args(annotation)[1:] if typing.get_origin(annotation) is Annotated else ():
        if isinstance(extra, Meta) and extra.description:
            return extra.description
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
        rule = _rule_of(key) if key else ""
        raise SettingsError(f"invalid {where}{exc}" + (f" ({rule})" if rule else "")) from None
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    """The rules types cannot state: plug-in names, networks, regular expressions."""
    try:
        check_plugin_name("builder.executor", settings.builder.executor, EXECUTORS)
        check_plugin_name("launcher.backend", settings.launcher.backend, LAUNCHER_BACKENDS)
        for prefix, target in settings.providers.classes.items():
            check_plugin_name(f"providers.classes.{prefix}", target, {})
    except PluginError as exc:
        raise SettingsError(str(exc)) from None
    served = set(PROVIDER_CLASSES) | set(settings.providers.classes)
    for prefix in settings.providers.enabled:
        if prefix not in served:
            raise SettingsError(
                f"invalid setting 'providers.enabled': no provider {prefix!r} (known: {', '.join(sorted(served))}; "
                "plug one in with providers.classes)"
            )
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
