"""The `binderflow` command: run the embedded default, one service, or launch a repository."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import urllib.parse
from typing import Any

from schemas import SERVICE_NAMES

from .runtime.plugins import PluginError
from .runtime.sandbox import SandboxUnavailable
from .runtime.settings import Settings, SettingsError, load_settings

__all__ = ["main"]


def _settings(args: argparse.Namespace, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(getattr(args, "config", None), overrides=overrides)
    except SettingsError as exc:
        print(f"binderflow: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _cmd_service(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    if args.nats:
        overrides["nats_url"] = args.nats
    settings = _settings(args, overrides)
    from .runtime.service import setup_logging

    setup_logging(settings.log_level, args.command)
    if args.command == "gateway":
        from .gateway.main import serve
    elif args.command == "resolver":
        from .resolver.main import serve
    elif args.command == "builder":
        from .builder.main import serve
    else:
        from .launcher.main import serve
    try:
        asyncio.run(serve(settings))
    except PluginError as exc:
        print(f"binderflow: {exc}", file=sys.stderr)
        return 2
    except SandboxUnavailable as exc:
        logging.getLogger("binderflow").error("%s could not start: %s", args.command, exc)
        return 1
    except OSError as exc:
        logging.getLogger("binderflow").error("%s could not start: %s", args.command, exc)
        return 1
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {}
    env: dict[str, str] = {}
    if args.port is not None:
        overrides["gateway"] = {"port": args.port}
        env["BINDERFLOW_GATEWAY_PORT"] = str(args.port)
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = _settings(args, overrides)
    from .runtime.embedded import run_up
    from .runtime.service import setup_logging

    setup_logging(settings.log_level, "up")
    try:
        return asyncio.run(run_up(settings, args.config, env))
    except FileNotFoundError as exc:
        print(f"binderflow: {exc}", file=sys.stderr)
        return 1


def launch_spec(repo: str, ref: str, provider: str) -> str:
    """BinderHub's spec for a repository URL (git) or an owner/repo name (gh, gl)."""
    if provider == "git":
        return f"{urllib.parse.quote(repo, safe='')}/{urllib.parse.quote(ref, safe='')}"
    return f"{repo.strip('/')}/{urllib.parse.quote(ref, safe='')}"


def _gateway_url(args: argparse.Namespace) -> str:
    """--gateway, else the settings' gateway.url (BINDERFLOW_GATEWAY_URL), public_url or host and port."""
    return str(args.gateway or _settings(args, {}).gateway.client_url)


def _cmd_launch(args: argparse.Namespace) -> int:
    from .launch_client import run_launch

    spec = launch_spec(args.repo, args.ref, args.provider)
    return asyncio.run(run_launch(_gateway_url(args), args.provider, spec, as_json=args.json))


def _cmd_logs(args: argparse.Namespace) -> int:
    from .launch_client import print_build_log

    return asyncio.run(print_build_log(_gateway_url(args), repo=args.repo, provider=args.provider, launch_id=args.launch))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="binderflow", description="Turn a Git repository into a running Jupyter server.")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run NATS and all four services on this machine (the embedded default)")
    up.add_argument("--config", help="TOML config file (default: $BINDERFLOW_CONFIG or ./binderflow.toml)")
    up.add_argument("--port", type=int, help="gateway port (default 8585)")
    up.add_argument("--data-dir", help="where NATS data, environments and servers live")
    up.set_defaults(func=_cmd_up)

    for name in SERVICE_NAMES:
        p = sub.add_parser(name, help=f"run the {name} service against an existing NATS")
        p.add_argument("--nats", help="NATS URL (default: settings nats_url)")
        p.add_argument("--config", help="TOML config file")
        p.set_defaults(func=_cmd_service)

    launch = sub.add_parser("launch", help="launch a repository through a gateway and follow its progress")
    launch.add_argument("repo", help="repository URL (git provider) or owner/repo (gh, gl)")
    launch.add_argument("--ref", default="HEAD", help="branch, tag or commit (default: HEAD)")
    launch.add_argument("--provider", default="git", help="repository provider (default: git)")
    launch.add_argument("--gateway", help="gateway URL (default: settings gateway.url, e.g. BINDERFLOW_GATEWAY_URL, else http://127.0.0.1:8585)")
    launch.add_argument("--config", help="TOML config file")
    launch.add_argument("--json", action="store_true", help="print each event as a JSON line")
    launch.set_defaults(func=_cmd_launch)

    logs = sub.add_parser("logs", help="print the build log of a repository's latest build (or of one launch)")
    logs.add_argument("repo", nargs="?", help="repository URL (or owner/repo with --provider gh/gl)")
    logs.add_argument("--provider", default="git", help="repository provider when REPO is not a URL (default: git)")
    logs.add_argument("--launch", help="a launch id instead of a repository")
    logs.add_argument("--gateway", help="gateway URL (default: settings gateway.url, e.g. BINDERFLOW_GATEWAY_URL, else http://127.0.0.1:8585)")
    logs.add_argument("--config", help="TOML config file")
    logs.set_defaults(func=_cmd_logs)

    from .events.cli import add_events_commands

    add_events_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
