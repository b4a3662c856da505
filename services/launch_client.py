"""`binderflow launch`: follow a launch's event stream and show its progress."""

from __future__ import annotations

import json
import sys
import urllib.parse

import aiohttp
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from schemas import PHASES

from .runtime.sse import stream_launch

__all__ = ["run_launch"]

# How far along a launch is at each phase, for the progress bar.
_PHASE_PROGRESS = {"waiting": 5, "fetching": 10, "building": 20, "pushing": 75, "built": 80, "launching": 85, "ready": 100, "failed": 100}


async def run_launch(gateway: str, provider: str, spec: str, as_json: bool = False) -> int:
    """Stream a launch; print the server URL and token on ready. Returns the exit status."""
    out = Console(file=sys.stdout, highlight=False)
    err = Console(file=sys.stderr, highlight=False)
    last: dict[str, object] = {}
    interactive = out.is_terminal and not as_json
    try:
        async with aiohttp.ClientSession() as session:
            if interactive:
                with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), console=out, transient=True) as progress:
                    task = progress.add_task("requesting", total=100)
                    async for event in stream_launch(session, gateway, provider, spec):
                        last = event
                        current = str(event.get("phase", ""))
                        message = str(event.get("message", "")).rstrip("\n")
                        progress.update(task, description=current, completed=_PHASE_PROGRESS.get(current, 50))
                        if message and current != "ready":
                            progress.console.print(f"[dim]{current:>9}[/dim] {message}", markup=True, highlight=False, soft_wrap=True)
            else:
                async for event in stream_launch(session, gateway, provider, spec):
                    last = event
                    if as_json:
                        print(json.dumps(event), flush=True)
                    else:
                        message = str(event.get("message", "")).rstrip("\n")
                        print(f"{event.get('phase', ''):>9} {message}", flush=True)
    except aiohttp.ClientResponseError as exc:
        err.print(f"binderflow: the gateway refused the launch: {exc.status} {exc.message}")
        return 2
    except aiohttp.ClientError as exc:
        err.print(f"binderflow: cannot reach the gateway at {gateway}: {exc}")
        return 2
    phase = last.get("phase")
    if phase == "ready":
        if not as_json:
            out.print(f"Server ready: {last['url']}")
            out.print(f"Token:        {last['token']}")
            out.print(f"Open:         {last['url']}?token={last['token']}")
        return 0
    if phase == "failed":
        err.print(f"Launch failed: {str(last.get('message', '')).strip()}")
        return 1
    err.print("binderflow: the event stream ended before the launch was ready or failed")
    return 1


assert set(_PHASE_PROGRESS) == set(PHASES)


async def print_build_log(gateway: str, repo: str | None = None, provider: str = "git", launch_id: str | None = None) -> int:
    """`binderflow logs`: fetch a build log from the gateway and print it. Returns the exit status."""
    err = Console(file=sys.stderr, highlight=False)
    base = gateway.rstrip("/")
    if launch_id:
        url = f"{base}/launches/{urllib.parse.quote(launch_id, safe='')}/log"
    elif repo and provider == "git":
        url = f"{base}/logs?repo={urllib.parse.quote(repo, safe='')}"
    elif repo:
        url = f"{base}/logs/{provider}/{repo.strip('/')}"
    else:
        err.print("binderflow logs: name a repository, or a launch with --launch")
        return 2
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as resp:
                body = await resp.text()
                if resp.status != 200:
                    err.print(f"binderflow logs: {body.strip() or resp.reason}")
                    return 1
    except aiohttp.ClientError as exc:
        err.print(f"binderflow: cannot reach the gateway at {gateway}: {exc}")
        return 2
    sys.stdout.write(body)
    return 0
