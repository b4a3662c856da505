"""The local backend: JupyterLab processes on this host, one per launch.

Each server gets a working copy of the repository (so edits never touch the
environment store), a fresh random token (passed in the environment, never on a
command line), a free port on the configured host, and a record in
`<data>/servers/<launch_id>/server.json` so a restarted launcher adopts the
servers still running and `binderflow up` can stop any left behind.

A server runs in the configured sandbox (services/runtime/sandbox.py) with the
server limits: it sees its environment read-only and may write only its own home
and runtime folders, never its record (which holds its token), other servers or
the data directory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import socket
import stat
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import msgspec

from schemas import LaunchRequest, ResolvedRepo
from services.runtime.environments import LocalEnvironmentStore
from services.runtime.limits import ResourceLimits
from services.runtime.sandbox import Confinement, View, installation_outside_system, sandbox_environment
from services.runtime.scripts import script_command

from services.runtime.settings import Settings
from services.runtime.serverrecords import ServerRecord, is_alive, kill_group, read_records, terminate

from .base import LaunchError, RunningServer

__all__ = ["LocalBackend"]

log = logging.getLogger(__name__)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _group_name(launch_id: str) -> str:
    return f"server-{launch_id}"


def _special_files(directory: str, names: list[str]) -> set[str]:
    """copytree's ignore: everything but regular files, folders and links."""
    skipped = set()
    for name in names:
        mode = os.lstat(os.path.join(directory, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            skipped.add(name)
    return skipped


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "<token>") if token else text


class LocalBackend:
    """JupyterLab processes on this host, from environments in the local store."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "LocalBackend":
        s = settings.launcher
        confinement = Confinement.create(settings.sandbox, settings.limits.server)
        log.info("servers run in %s", confinement.describe())
        return cls(
            LocalEnvironmentStore(settings.environments_path),
            settings.servers_path,
            host=s.server_host,
            start_timeout_seconds=s.start_timeout_seconds,
            idle_timeout_seconds=s.idle_timeout_seconds,
            max_age_seconds=s.max_age_seconds,
            max_servers=s.max_servers,
            confinement=confinement,
            tmp_bytes=settings.limits.tmp_bytes,
        )

    def __init__(
        self,
        store: LocalEnvironmentStore,
        servers_path: Path,
        *,
        host: str = "127.0.0.1",
        start_timeout_seconds: float = 120.0,
        idle_timeout_seconds: float = 600.0,
        max_age_seconds: float = 6 * 3600.0,
        max_servers: int = 50,
        confinement: Confinement | None = None,
        tmp_bytes: int = 1024**3,
    ) -> None:
        self.store = store
        self.servers_path = Path(servers_path)
        self.host = host
        self.start_timeout_seconds = start_timeout_seconds
        self.idle_timeout_seconds = idle_timeout_seconds
        self.max_age_seconds = max_age_seconds
        self.max_servers = max_servers
        self._confinement = confinement
        self.tmp_bytes = tmp_bytes
        self._servers: dict[str, ServerRecord] = {}
        self._starting: dict[str, asyncio.Future[RunningServer]] = {}

    @property
    def confinement(self) -> Confinement:
        """The sandbox and limits; by default bubblewrap with no limits, checked on first use."""
        if self._confinement is None:
            self._confinement = Confinement.create("bubblewrap", ResourceLimits())
        return self._confinement

    # -- adoption ------------------------------------------------------------
    async def adopt(self) -> int:
        """Take over servers a previous launcher process left running; forget dead ones."""
        adopted = 0
        for directory, record in read_records(self.servers_path):
            if is_alive(record.pid):
                self._servers[record.launch_id] = record
                adopted += 1
            else:
                self._remove_group(record.launch_id)
                shutil.rmtree(directory, ignore_errors=True)
        for directory in self.servers_path.glob("*") if self.servers_path.is_dir() else []:
            if directory.is_dir() and not (directory / "server.json").exists() and directory.name not in self._servers:
                shutil.rmtree(directory, ignore_errors=True)
        return adopted

    @property
    def running(self) -> int:
        return len(self._servers)

    # -- start ---------------------------------------------------------------
    async def start(self, launch_id: str, repo: ResolvedRepo, request: LaunchRequest) -> RunningServer:
        record = self._servers.get(launch_id)
        if record is not None and is_alive(record.pid):
            return self._running(record)
        pending = self._starting.get(launch_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[RunningServer] = asyncio.get_running_loop().create_future()
        self._starting[launch_id] = future
        try:
            server = await self._start(launch_id, repo, request)
            future.set_result(server)
            return server
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            del self._starting[launch_id]

    def _running(self, record: ServerRecord) -> RunningServer:
        return RunningServer(launch_id=record.launch_id, url=record.url, token=record.token, image=record.image, started_at=record.started_at)

    async def _start(self, launch_id: str, repo: ResolvedRepo, request: LaunchRequest) -> RunningServer:
        name = repo.image_name
        if not self.store.is_complete(name):
            raise LaunchError(f"The environment {name} is not in the environment store; it may have been removed. Launch again to rebuild it.")
        if len(self._servers) + len(self._starting) > self.max_servers:
            raise LaunchError(f"Too many servers are running here ({len(self._servers)}); try again later.")
        metadata = self.store.metadata(name)
        directory = self.servers_path / launch_id
        home = directory / "home"
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        os.chmod(directory, 0o700)
        # The repository folder was written by the build (repository code): links are
        # copied as links and anything but files and folders (pipes, sockets) is left out.
        await asyncio.to_thread(shutil.copytree, self.store.repo(name), home, symlinks=True, ignore=_special_files)
        runtime = directory / "runtime"
        runtime.mkdir()
        venv = self.store.venv(name)
        # Environments built before the prefix was recorded use the launcher's own Python's.
        python_prefix = Path(metadata.python_prefix) if metadata.python_prefix else installation_outside_system(sys.executable)
        view = View(writable=(home, runtime), readable=(venv, *filter(None, [python_prefix])), tmp_bytes=self.tmp_bytes)
        token = secrets.token_hex(24)
        for attempt in range(3):
            port = _free_port(self.host)
            cmd = [
                str(venv / "bin" / "jupyter"),
                "lab",
                "--no-browser",
                f"--ip={self.host}",
                f"--port={port}",
                "--port-retries=0",
                f"--ServerApp.root_dir={home}",
            ]
            if os.geteuid() == 0:
                cmd.append("--allow-root")
            if metadata.start_script:
                # repo2docker's contract: `start` runs with the server command as
                # arguments and must `exec "$@"`.
                cmd = script_command(home / metadata.start_script, cmd)
            env = sandbox_environment({
                "VIRTUAL_ENV": str(venv),
                "JUPYTER_TOKEN": token,
                "JUPYTER_RUNTIME_DIR": str(runtime),
                "JUPYTER_IMAGE": name,
                "JUPYTER_IMAGE_SPEC": name,
                "BINDER_REPO_URL": repo.repo_url,
                "BINDER_REF_URL": repo.ref_url,
                "BINDER_LAUNCH_HOST": request.launch_host,
                "BINDER_REQUEST": repo.binder_request,
                "BINDER_PERSISTENT_REQUEST": repo.binder_persistent_request,
            }, home)
            env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
            argv, preexec, _ = self.confinement.prepare(cmd, view, home, _group_name(launch_id))
            log_path = directory / "server.log"
            with open(log_path, "ab") as log_file:
                os.chmod(log_path, 0o600)
                try:
                    proc = await asyncio.create_subprocess_exec(
                        *argv,
                        cwd=str(home),
                        env=env,
                        stdin=asyncio.subprocess.DEVNULL,
                        stdout=log_file,
                        stderr=log_file,
                        start_new_session=True,
                        preexec_fn=preexec,
                    )
                except OSError as exc:
                    # The sandbox itself cannot be started (the repository's own
                    # `start` runs inside it, and fails there, in the server's log).
                    await self._discard(launch_id)
                    raise LaunchError(f"The server could not be started: {argv[0]}: {exc.strerror or exc}") from None
            url = f"http://{self.host}:{port}/"
            record = ServerRecord(
                launch_id=launch_id, pid=proc.pid, port=port, url=url, token=token, image=name, started_at=datetime.now(timezone.utc)
            )
            record_path = directory / "server.json"
            record_path.write_bytes(msgspec.json.encode(record))
            os.chmod(record_path, 0o600)
            self._servers[launch_id] = record
            try:
                await self._wait_ready(proc, url, token)
                log.info("launch %s: server for %s ready on port %d", launch_id, name, port)
                return self._running(record)
            except LaunchError as exc:
                self._servers.pop(launch_id, None)
                await terminate(proc.pid)
                tail = _scrub(log_path.read_text(errors="replace")[-3000:], token)
                if "is already in use" in tail and attempt < 2:
                    log.warning("port %d was taken; retrying", port)
                    continue
                await self._discard(launch_id)
                last = [ln for ln in tail.splitlines() if ln.strip()][-5:]
                detail = ("\n" + "\n".join(last)) if last else ""
                raise LaunchError(f"{exc}{detail}") from None
            except BaseException:
                self._servers.pop(launch_id, None)
                await terminate(proc.pid)
                await self._discard(launch_id)
                raise
        raise LaunchError("Could not find a free port for the server")

    async def _wait_ready(self, proc: asyncio.subprocess.Process, url: str, token: str) -> None:
        deadline = time.monotonic() + self.start_timeout_seconds
        headers = {"Authorization": f"token {token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:
                if proc.returncode is not None:
                    raise LaunchError(f"The server exited during start-up with status {proc.returncode}.")
                try:
                    async with session.get(url + "api/status", headers=headers) as resp:
                        if resp.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                try:
                    await asyncio.wait_for(proc.wait(), 0.25)
                except asyncio.TimeoutError:
                    pass
        raise LaunchError(f"The server did not answer within {self.start_timeout_seconds:.0f} s.")

    # -- stop ----------------------------------------------------------------
    async def stop(self, launch_id: str) -> None:
        record = self._servers.pop(launch_id, None)
        if record is None:
            return
        await terminate(record.pid)
        await self._discard(launch_id)

    async def _discard(self, launch_id: str) -> None:
        """Remove what is left of a stopped server: its control group and its folder."""
        await asyncio.to_thread(self._remove_group, launch_id)
        shutil.rmtree(self.servers_path / launch_id, ignore_errors=True)

    def _remove_group(self, launch_id: str) -> None:
        if self.confinement.groups is not None:
            self.confinement.groups.existing_group(_group_name(launch_id)).remove()

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(lid) for lid in list(self._servers)))

    async def _last_activity(self, session: aiohttp.ClientSession, record: ServerRecord) -> datetime | None:
        try:
            async with session.get(record.url + "api/status", headers={"Authorization": f"token {record.token}"}) as resp:
                if resp.status != 200:
                    return None
                body = await resp.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
            return None
        raw = body.get("last_activity")
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return None

    async def cull(self, now: datetime) -> list[str]:
        stopped: list[str] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for launch_id, record in list(self._servers.items()):
                if launch_id in self._starting:
                    # Still starting: start-up has its own timeout, and a slow start
                    # must not count as age.
                    continue
                reason = ""
                if not is_alive(record.pid):
                    reason = "exited"
                elif self.max_age_seconds and now - record.started_at > timedelta(seconds=self.max_age_seconds):
                    reason = "reached its maximum age"
                elif self.idle_timeout_seconds:
                    last = await self._last_activity(session, record)
                    if last is not None and now - last > timedelta(seconds=self.idle_timeout_seconds):
                        reason = "was idle"
                if reason:
                    log.info("stopping server of launch %s: it %s", launch_id, reason)
                    await self.stop(launch_id)
                    stopped.append(launch_id)
        return stopped
