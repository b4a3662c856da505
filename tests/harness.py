"""Real components for tests: nats-server, git daemon, a package index and binderflow's services.

Everything listens on 127.0.0.1 only. Servers are started with Popen so the PID
held is the server's own, and stopped by that PID.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import urllib.request
from pathlib import Path
from typing import Any, Mapping

import aiohttp

from nats.aio.client import Client as NATS

from schemas import Subjects
from services.runtime.bus import EventPublisher, ensure_streams
from services.runtime.settings import Settings
from services.runtime.sse import stream_launch

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / ".cache" / "wheelhouse"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, status: int | None = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if status is None or resp.status == status:
                    return
                last = resp.status
        except urllib.error.HTTPError as exc:
            last = exc.code
            if status is None:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer {status} within {timeout} s (last: {last})")


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


class GitServer:
    """Real Git repositories served by `git daemon` on 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["git", "daemon", f"--base-path={base}", "--export-all", "--reuseaddr", "--listen=127.0.0.1", f"--port={self.port}", str(base)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def create(self, name: str, files: dict[str, str], branch: str = "main") -> str:
        """A new repository `name` with `files` on `branch`; returns its URL."""
        path = self.base / name
        git("init", "--quiet", f"--initial-branch={branch}", str(path))
        self.commit(name, files)
        return self.url(name)

    def commit(self, name: str, files: Mapping[str, str | None], message: str = "change") -> str:
        """Write (or, with None, delete) files and commit; returns the new commit's sha."""
        path = self.base / name
        for rel, content in files.items():
            target = path / rel
            if content is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            if rel.endswith(("postBuild", "start")):
                target.chmod(0o755)
        git("add", "-A", cwd=path)
        git("commit", "--quiet", "--allow-empty", "-m", message, cwd=path)
        return git("rev-parse", "HEAD", cwd=path)

    def head(self, name: str) -> str:
        return git("rev-parse", "HEAD", cwd=self.base / name)

    def stop(self) -> None:
        stop_process(self.proc)


class LogNamespace:
    """A namespace of its own on a nats-server, its streams made: write events as the services do, read them back."""

    def __init__(self, nc: NATS, subjects: Subjects) -> None:
        self.nc = nc
        self.js = nc.jetstream()
        self.subjects = subjects
        self.publisher = EventPublisher(self.js, subjects)

    @classmethod
    async def open(cls, nc: NATS) -> "LogNamespace":
        subjects = Subjects(f"t{uuid.uuid4().hex[:10]}")
        await ensure_streams(nc.jetstream(), subjects, Settings())
        return cls(nc, subjects)


def spec_for(url: str, ref: str = "HEAD") -> str:
    return f"{urllib.parse.quote(url, safe='')}/{urllib.parse.quote(ref, safe='')}"


class Pipeline:
    """binderflow's four services as separate OS processes against one NATS, in their own namespace."""

    def __init__(
        self, nats_url: str, prefix: str, data_dir: Path, index_url: str, log_dir: Path, extra_env: dict[str, str] | None = None, uv_cache: Path | None = None
    ) -> None:
        self.nats_url = nats_url
        self.prefix = prefix
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.gateway_port = free_port()
        self.procs: dict[str, list[subprocess.Popen[bytes]]] = {}
        self.env = {
            **os.environ,
            "BINDERFLOW_NATS_URL": nats_url,
            "BINDERFLOW_SUBJECT_PREFIX": prefix,
            "BINDERFLOW_DATA_DIR": str(data_dir),
            "BINDERFLOW_HEARTBEAT_SECONDS": "1",
            "BINDERFLOW_GATEWAY_PORT": str(self.gateway_port),
            "BINDERFLOW_GATEWAY_SERVICE_STALE_AFTER_SECONDS": "5",
            "BINDERFLOW_RESOLVER_HTTP_PORT": "0",
            "BINDERFLOW_BUILDER_HTTP_PORT": "0",
            "BINDERFLOW_LAUNCHER_HTTP_PORT": "0",
            "BINDERFLOW_RESOLVER_GIT_ALLOWED_HOSTS": "127.0.0.1",
            "BINDERFLOW_BUILDER_FIND_LINKS": index_url,
            "BINDERFLOW_BUILDER_NO_INDEX": "true",
            "BINDERFLOW_LAUNCHER_CULL_INTERVAL_SECONDS": "5",
            "BINDERFLOW_BUILDER_UV_CACHE_DIR": str(uv_cache or data_dir / "uv-cache"),
            **(extra_env or {}),
        }
        self.env.pop("BINDERFLOW_CONFIG", None)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def start(self, service: str, count: int = 1, **env: str) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            n = len(self.procs.get(service, []))
            # The child writes to its own copy of the file descriptor; ours closes at once.
            with open(self.log_dir / f"{self.prefix}-{service}-{n}.log", "ab") as log:
                proc = subprocess.Popen([sys.executable, "-m", "services", service], env={**self.env, **env}, stdout=log, stderr=log, cwd=self.data_dir.parent)
            self.procs.setdefault(service, []).append(proc)
            started.append(proc)
        return started

    def start_all(self) -> "Pipeline":
        for service in ("gateway", "resolver", "builder", "launcher"):
            self.start(service)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, Any]:
        wait_http(self.gateway_url + "/health", timeout)
        with urllib.request.urlopen(self.gateway_url + "/health") as resp:
            return json.load(resp)

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.gateway_url + "/health", timeout=5) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            return json.load(exc)

    def instances(self, service: str) -> list[dict[str, Any]]:
        return [i for i in self.health()["checks"]["services"][service]["instances"] if i["ok"]]

    def metrics(self, port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def stop(self) -> None:
        for procs in self.procs.values():
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
        for procs in self.procs.values():
            for proc in procs:
                stop_process(proc, 30)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.log_dir.glob(f"{self.prefix}-*.log")))


class Launch:
    """The events one client received, with the time each arrived."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []
        self.started = time.monotonic()

    @property
    def phases(self) -> list[str]:
        return [e["phase"] for e in self.events]

    @property
    def last(self) -> dict[str, Any]:
        return self.events[-1]

    @property
    def seconds(self) -> float:
        return self.arrived[-1] - self.started

    def messages(self, phase: str) -> list[str]:
        return [e["message"] for e in self.events if e["phase"] == phase]


async def launch(gateway_url: str, provider: str, spec: str, timeout: float = 240.0, result: Launch | None = None) -> Launch:
    """Open /build/<provider>/<spec> and collect events until ready or failed.

    Pass `result` to watch the events arrive while the launch runs.
    """
    result = Launch() if result is None else result

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            async for event in stream_launch(session, gateway_url, provider, spec):
                result.events.append(event)
                result.arrived.append(time.monotonic())

    await asyncio.wait_for(run(), timeout)
    return result


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers: a hostile
    Git or HTTP host that would hold a client forever."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="silent-server")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    @property
    def connections(self) -> int:
        """How many connections it accepted (and holds)."""
        return len(self._held)

    def url(self, path: str = "repo.git", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        for conn in self._held:
            conn.close()

    def __enter__(self) -> "SilentServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def processes_mentioning(text: str) -> list[str]:
    """Command lines of this host's processes that contain `text` (leftovers a test must not leave)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found
