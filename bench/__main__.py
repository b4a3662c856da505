"""Time to `ready` for a first build and for a cached relaunch, through the real pipeline.

(`python -m bench events` measures reading the event log instead: bench/events.py;
`python -m bench streams` many open event streams on one gateway, `python -m bench logs`
build logs read after the fact: bench/streams.py.)

Starts a private nats-server, a git daemon, a package index (the test wheelhouse)
and the four services on 127.0.0.1, launches one repository a few times, and
prints a table. The baseline in the same run is the cached relaunch: the
difference is what the build costs. Each is measured twice, with repository
code in the bubblewrap sandbox (the default) and unconfined (`sandbox = "none"`),
one pipeline after the other in the same run: the difference is what
containment costs.

    python -m bench [--runs N] [--sandbox bubblewrap|none|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.runtime.embedded import start_nats_server
from tests.harness import WHEELHOUSE, GitServer, Pipeline, free_port, launch, spec_for, stop_process, wait_http


async def _measure(runs: int, sandboxes: list[str]) -> list[tuple[str, list[float], list[float]]]:
    tmp = Path(tempfile.mkdtemp(prefix="binderflow-bench-"))
    nats, nats_url, _ = start_nats_server(tmp / "nats")
    git = GitServer(tmp / "repos")
    port = free_port()
    index = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(WHEELHOUSE)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    index_url = f"http://127.0.0.1:{port}/"
    wait_http(index_url)
    rows = []
    try:
        for sandbox in sandboxes:
            first, cached = await _measure_pipeline(tmp / sandbox, nats_url, index_url, git, runs, sandbox)
            rows.append((f"tabulate + JupyterLab, sandbox {sandbox}", first, cached))
    finally:
        git.stop()
        stop_process(index)
        stop_process(nats)
    return rows


async def _measure_pipeline(root: Path, nats_url: str, index_url: str, git: GitServer, runs: int, sandbox: str) -> tuple[list[float], list[float]]:
    (root / "data").mkdir(parents=True)
    (root / "logs").mkdir()
    pipeline = Pipeline(
        nats_url, f"bench{uuid.uuid4().hex[:6]}", root / "data", index_url, root / "logs", extra_env={"BINDERFLOW_SANDBOX": sandbox}
    ).start_all()
    first: list[float] = []
    cached: list[float] = []
    try:
        pipeline.wait_healthy()
        # Warm the package cache, as on a Binder that has built other repositories before.
        url = git.create(f"bench-warm-{uuid.uuid4().hex[:6]}", {"requirements.txt": "tabulate\n"})
        assert (await launch(pipeline.gateway_url, "git", spec_for(url, "main"))).last["phase"] == "ready"
        for i in range(runs):
            # A new repository each run: a first build.
            url = git.create(f"bench-{i}-{uuid.uuid4().hex[:6]}", {"requirements.txt": "tabulate\n", "demo.ipynb": "{}"})
            t0 = time.monotonic()
            result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
            assert result.last["phase"] == "ready", result.last
            first.append(time.monotonic() - t0)
            t0 = time.monotonic()
            result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
            assert result.phases[0] == "built", result.phases
            cached.append(time.monotonic() - t0)
    finally:
        pipeline.stop()
    return first, cached


def main() -> None:
    if sys.argv[1:2] == ["events"]:
        from .events import main as events_main

        events_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["streams"]:
        from .streams import main as streams_main

        streams_main(sys.argv[2:])
        return
    if sys.argv[1:2] == ["logs"]:
        from .streams import main_logs

        main_logs(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sandbox", choices=["bubblewrap", "none", "both"], default="both")
    args = parser.parse_args()
    if not (WHEELHOUSE / ".complete").exists():
        sys.exit("run `make wheelhouse` first")
    sandboxes = ["bubblewrap", "none"] if args.sandbox == "both" else [args.sandbox]
    rows = asyncio.run(_measure(args.runs, sandboxes))
    table = Table(title=f"time to ready, seconds ({args.runs} runs; median / min / max)")
    table.add_column("repository")
    table.add_column("first build")
    table.add_column("cached relaunch (baseline)")
    table.add_column("build cost")
    for name, first, cached in rows:
        fmt = lambda xs: f"{statistics.median(xs):.2f} / {min(xs):.2f} / {max(xs):.2f}"  # noqa: E731
        table.add_row(name, fmt(first), fmt(cached), f"{statistics.median(first) - statistics.median(cached):.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
