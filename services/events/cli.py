"""`binderflow events ...`: tail, replay, export, stats and asyncapi on the command line.

Parses arguments, finds NATS, shows progress on a terminal and prints; the work
is in tools.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator

import msgspec

from schemas import Subjects

from ..runtime.brokerauth import read_credentials
from ..runtime.settings import Settings, SettingsError, load_settings
from .launches import EVENT_KINDS, EventFilter
from .stats import Distribution, RepoStats
from .times import TimeArgumentError, parse_time

if TYPE_CHECKING:  # nats is imported when a tool runs, not by every `binderflow` command
    from nats.aio.client import Client as NATS

    from .reader import ReadProgress

__all__ = ["add_events_commands", "nats_url_for"]

_DEFAULT_NATS_URL = {f.name: f.default for f in msgspec.structs.fields(Settings)}["nats_url"]


class _Failure(Exception):
    """Stops a command with a message for the person running it (exit status 1)."""


def nats_url_for(explicit: str | None, settings: Settings, up_status: dict[str, Any] | None) -> str:
    """Which NATS the tools read. Pure.

    `--nats` first; then a nats_url configured away from its default (config file
    or BINDERFLOW_NATS_URL); then the URL a running `binderflow up` wrote in its
    status file (its nats-server has a random port); then the default.
    """
    if explicit:
        return explicit
    if settings.nats_url != _DEFAULT_NATS_URL:
        return settings.nats_url
    if up_status and isinstance(up_status.get("nats_url"), str):
        return up_status["nats_url"]
    return settings.nats_url


def _login_for(url: str, settings: Settings, up_status: dict[str, Any] | None) -> tuple[str, str]:
    """The broker user and password: configured ones, else the operator's of the running
    `binderflow up` whose broker this is (from its data directory, readable by its owner)."""
    if settings.nats_user:
        return settings.nats_user, settings.nats_password
    if up_status and up_status.get("nats_url") == url:
        try:
            credentials = read_credentials(settings.data_path / "nats" / "credentials.json")
            return "operator", credentials.password("operator")
        except (OSError, msgspec.DecodeError, KeyError):
            return "", ""
    return "", ""


def _running_up_status(settings: Settings) -> dict[str, Any] | None:
    """<data_dir>/up.json of a `binderflow up` that is still running, else None."""
    path = settings.data_path / "up.json"
    try:
        status = json.loads(path.read_text())
        os.kill(int(status["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return status if isinstance(status, dict) else None


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args.config)
    except SettingsError as exc:
        raise _Failure(str(exc)) from None


def _time(text: str | None, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text, now)
    except TimeArgumentError as exc:
        raise _Failure(str(exc)) from None


@contextlib.asynccontextmanager
async def _connected(args: argparse.Namespace, settings: Settings) -> AsyncIterator[tuple["NATS", Subjects]]:
    import nats
    from nats.js.errors import NotFoundError

    up_status = _running_up_status(settings)
    url = nats_url_for(args.nats, settings, up_status)
    user, password = _login_for(url, settings, up_status)
    seen: list[Exception] = []

    async def quietly(exc: Exception) -> None:
        # nats-py prints a traceback per failed try by default; the message below says it once.
        seen.append(exc)

    try:
        nc = await nats.connect(
            url, name="binderflow-events", connect_timeout=5, max_reconnect_attempts=3, allow_reconnect=True,
            user=user or None, password=password or None, error_cb=quietly,
        )
    except Exception as exc:  # nats raises several kinds; all mean the same here
        if any("authorization" in str(e).lower() for e in [*seen, exc]):
            raise _Failure(
                f"cannot reach NATS at {url}: it refused {'user ' + repr(user) if user else 'a connection without a broker user'}. "
                "Give the operator's (BINDERFLOW_NATS_USER=operator and BINDERFLOW_NATS_PASSWORD from <data_dir>/nats/credentials.json), "
                "or pass --config of the running `binderflow up`"
            ) from None
        raise _Failure(f"cannot reach NATS at {url} ({exc or type(exc).__name__}); pass --nats URL, or start `binderflow up`") from None
    subjects = Subjects(settings.subject_prefix)
    try:
        try:
            await nc.jetstream().stream_info(subjects.events_stream)
        except NotFoundError:
            raise _Failure(f"NATS at {url} has no event log (stream {subjects.events_stream}): has binderflow run there with subject_prefix {settings.subject_prefix!r}?") from None
        yield nc, subjects
    finally:
        await nc.close()


@contextlib.contextmanager
def _progress(label: str, prints_as_it_reads: bool = False) -> Iterator["ReadProgress | None"]:
    """A progress bar on a terminal's stderr: nothing when stderr is not a terminal, nor
    when the command's own lines go to the same terminal while it reads."""
    if not sys.stderr.isatty() or (prints_as_it_reads and sys.stdout.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report


def _printer(flush: bool = False) -> Callable[[str], None]:
    """Writes lines to stdout; `flush` after each, for a live tail read through a pipe."""
    stdout = sys.stdout

    def out(line: str) -> None:
        stdout.write(line + "\n")
        if flush:
            stdout.flush()

    return out


def _filter(args: argparse.Namespace) -> EventFilter:
    return EventFilter(
        providers=frozenset(args.provider or ()),
        repo=args.repo or "",
        phases=frozenset(args.phase or ()),
    )


# -- commands -------------------------------------------------------------------


async def _tail(args: argparse.Namespace) -> int:
    from .tools import tail

    settings = _settings(args)
    since = _time(args.since, datetime.now(timezone.utc))
    async with _connected(args, settings) as (nc, subjects):
        await tail(nc, subjects, _filter(args), _printer(flush=True), as_json=args.json, since=since, limit=args.limit)
    return 0


async def _replay(args: argparse.Namespace) -> int:
    from .tools import LaunchNotFound, replay_launch, replay_range

    if args.launch_id and (args.since or args.until):
        raise _Failure("give a launch id or --since/--until, not both")
    if not args.launch_id and not args.since:
        raise _Failure("give a launch id, or a time range with --since (and --until)")
    speed = args.speed if args.paced else None
    settings = _settings(args)
    now = datetime.now(timezone.utc)
    since, until = _time(args.since, now), _time(args.until, now)
    async with _connected(args, settings) as (nc, subjects):
        with _progress("reading the log", prints_as_it_reads=True) as progress:
            if args.launch_id:
                try:
                    await replay_launch(nc, subjects, args.launch_id, _printer(), as_json=args.json, speed=speed, progress=progress)
                except LaunchNotFound:
                    raise _Failure(f"no launch {args.launch_id} in the event log (never started, or older than its retention)") from None
            else:
                await replay_range(
                    nc, subjects, since, until or now, _printer(), event_filter=_filter(args), with_log=args.log,
                    as_json=args.json, speed=speed, progress=progress,
                )
    return 0


def _write_atomically(path: str, lines: list[str]) -> None:
    target = Path(path)
    with tempfile.NamedTemporaryFile("w", dir=target.parent or Path("."), prefix=f".{target.name}.", delete=False) as tmp:
        for line in lines:
            tmp.write(line + "\n")
    os.replace(tmp.name, target)


async def _export(args: argparse.Namespace) -> int:
    from .tools import export_mybinder

    settings = _settings(args)
    now = datetime.now(timezone.utc)
    since, until = _time(args.since, now), _time(args.until, now) or now
    async with _connected(args, settings) as (nc, subjects):
        with _progress("reading the log") as progress:
            lines = await export_mybinder(
                nc, subjects, since, until, only_success=args.only_success,
                with_request_origin=args.with_request_origin, progress=progress,
            )
    if args.output and args.output != "-":
        _write_atomically(args.output, lines)
        print(f"binderflow: {len(lines)} launches written to {args.output}", file=sys.stderr)
    else:
        out = _printer()
        for line in lines:
            out(line)
    return 0


def _seconds(d: Distribution | None) -> str:
    if d is None:
        return "-"
    return f"{d.median_seconds:.1f} / {d.p90_seconds:.1f} / {d.max_seconds:.1f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "-"


def _print_stats(rows: list[RepoStats], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("repository", overflow="fold")
    table.add_column("launches", justify="right")
    table.add_column("by status")
    table.add_column("builds", justify="right")
    table.add_column("builds by status")
    table.add_column("build s (median / p90 / max)")
    table.add_column("to ready s (median / p90 / max)")
    for r in rows:
        table.add_row(r.repo_url, str(r.launches), _counts(r.launches_by_status), str(r.builds), _counts(r.builds_by_status), _seconds(r.build_seconds), _seconds(r.seconds_to_ready))
    # Piped into a file or another program, the table keeps whole URLs on one line.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


async def _stats(args: argparse.Namespace) -> int:
    import time

    from .tools import launch_stats

    settings = _settings(args)
    now = datetime.now(timezone.utc)
    # Up to now, not to wherever the log has grown by the time the read gets there.
    since, until = _time(args.since, now), _time(args.until, now) or now
    started = time.monotonic()
    async with _connected(args, settings) as (nc, subjects):
        with _progress("reading the log") as progress:
            rows = await launch_stats(nc, subjects, since, until, repo_url=args.repo, top=args.top, progress=progress)
    took = time.monotonic() - started
    if args.json:
        print(json.dumps({"since": since.isoformat() if since else None, "until": until.isoformat(), "seconds": round(took, 3), "repositories": msgspec.to_builtins(rows)}, indent=2))
        return 0
    if args.repo and not rows:
        print(f"no launch of {args.repo} in the log{' since ' + args.since if args.since else ''}")
        return 0
    span = f"since {since:%Y-%m-%d %H:%M} UTC" if since else "the whole log"
    _print_stats(rows, f"{'launches of ' + args.repo if args.repo else f'top {args.top} repositories'}, {span} (read in {took:.1f} s)")
    return 0


async def _asyncapi(args: argparse.Namespace) -> int:
    from schemas.asyncapi import asyncapi_document

    text = json.dumps(asyncapi_document(), indent=2) + "\n"
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


# -- argument parsing -------------------------------------------------------------


def _connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats", help="NATS URL (default: settings nats_url, or the one `binderflow up` is running)")
    parser.add_argument("--config", help="TOML config file (default: $BINDERFLOW_CONFIG or ./binderflow.toml)")


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", action="extend", nargs="+", metavar="P", help="only launches with these spec prefixes (gh, git, ...)")
    parser.add_argument("--repo", metavar="TEXT", help="only launches whose repository URL (or spec) contains TEXT")
    parser.add_argument("--phase", action="extend", nargs="+", choices=EVENT_KINDS, metavar="PH", help=f"only these phases or facts: {', '.join(EVENT_KINDS)}")


_TIME_HELP = "ISO 8601 (2026-01-02T03:04:05Z) or a duration before now (6h, 7d, 180d)"


def _run(handler: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(asyncio.run(handler(args)) or 0)
        except _Failure as exc:
            print(f"binderflow events: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            # `... | head`: the reader went away, which is not an error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0

    return run


def add_events_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register `events` and its subcommands on the `binderflow` parser's subparsers."""
    events = sub.add_parser("events", help="read the event log: tail, replay, export, stats, asyncapi")
    tools = events.add_subparsers(dest="events_command", required=True)

    tail = tools.add_parser("tail", help="print events as they happen, filtered")
    _filter_arguments(tail)
    tail.add_argument("--since", help=f"start this far back instead of with new events: {_TIME_HELP}")
    tail.add_argument("--limit", type=int, help="stop after printing this many events")
    tail.add_argument("--json", action="store_true", help="one JSON event per line (tokens blanked)")
    _connection_arguments(tail)
    tail.set_defaults(func=_run(_tail))

    replay = tools.add_parser("replay", help="print one launch (with its build log) or a time range, in log order")
    replay.add_argument("launch_id", nargs="?", help="a launch id (its events and build log lines)")
    replay.add_argument("--since", help=f"start of a time range: {_TIME_HELP}")
    replay.add_argument("--until", help=f"end of the time range (default: now): {_TIME_HELP}")
    replay.add_argument("--log", action="store_true", help="with a time range: include build log lines")
    _filter_arguments(replay)
    replay.add_argument("--paced", action="store_true", help="wait between events as long as they were apart")
    replay.add_argument("--speed", type=float, default=1.0, help="with --paced: this many times faster (default 1)")
    replay.add_argument("--json", action="store_true", help="one JSON event per line (tokens blanked)")
    _connection_arguments(replay)
    replay.set_defaults(func=_run(_replay))

    export = tools.add_parser("export", help="launches as JSON Lines in the mybinder.org analytics archive format")
    export.add_argument("--since", required=True, help=f"launches that ended from: {_TIME_HELP}")
    export.add_argument("--until", help=f"to (default: now): {_TIME_HELP}")
    export.add_argument("--format", choices=["mybinder"], default="mybinder", help="mybinder: BinderHub's launch event, version 5")
    export.add_argument("-o", "--output", help="write to this file (default: standard output)")
    export.add_argument("--only-success", action="store_true", help="successful launches only, as mybinder.org's archive has")
    export.add_argument("--with-request-origin", action="store_true", help="add request_origin (not in BinderHub's schema)")
    _connection_arguments(export)
    export.set_defaults(func=_run(_export))

    stats = tools.add_parser("stats", help="launches, builds and durations per repository, from the log alone")
    stats.add_argument("--repo", metavar="URL", help="one repository (default: the top repositories)")
    stats.add_argument("--since", help=f"launches requested from: {_TIME_HELP} (default: the whole log)")
    stats.add_argument("--until", help=f"to (default: now): {_TIME_HELP}")
    stats.add_argument("--top", type=int, default=10, help="how many repositories without --repo (default 10)")
    stats.add_argument("--json", action="store_true", help="print JSON")
    _connection_arguments(stats)
    stats.set_defaults(func=_run(_stats))

    asyncapi = tools.add_parser("asyncapi", help="print the AsyncAPI document of every subject and payload")
    asyncapi.add_argument("-o", "--output", help="write to this file (default: standard output)")
    asyncapi.set_defaults(func=_run(_asyncapi))
