"""Shared parts of the data-repository stand-ins (doi.org, Zenodo, Figshare,
HydroShare, Dataverse, CKAN): their base class and threaded server, page and
archive builders.

The internet is unreachable here, so each stand-in is a small aiohttp.web
server on 127.0.0.1 answering with the status codes, redirects and JSON field
names the real service uses, and serving the record's files. Each runs in its
own thread with its own event loop, so tests may block (urllib, subprocesses)
while the stand-ins answer the resolver and builder processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import stat
import threading
import time
import zipfile
from typing import Callable, Self

from aiohttp import web

__all__ = ["StandIn", "StandinServer", "make_zip", "md5_of", "html_page", "base_url_of"]


class StandinServer:
    """Runs one aiohttp.web application on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="standin")
        # Every request's path and query, in order, for tests that check what was asked.
        self.requests: list[str] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        @web.middleware
        async def record(request: web.Request, handler: Callable) -> web.StreamResponse:
            self.requests.append(request.path_qs)
            return await handler(request)

        self.app.middlewares.append(record)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def start(self) -> "StandinServer":
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("stand-in server did not start")
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> "StandinServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StandIn:
    """Base of the data-repository stand-ins: the application `_app()` builds, served
    on 127.0.0.1 by a StandinServer. Use `start()`/`stop()` or `with`.

    Subclasses set up the state their handlers read before calling
    `super().__init__()`, which builds the application.
    """

    def __init__(self) -> None:
        self.server = StandinServer(self._app())

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> Self:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _app(self) -> web.Application:
        """The service's routes; handlers read the stand-in's state at request time."""
        raise NotImplementedError


def base_url_of(request: web.Request) -> str:
    """The scheme and host the request was sent to, as the services build their own links."""
    return f"{request.scheme}://{request.host}"


def make_zip(
    files: dict[str, bytes | str],
    *,
    symlinks: dict[str, str] | None = None,
    executable: tuple[str, ...] = (),
) -> bytes:
    """A zip archive holding `files` (names used exactly as given, '..' included)
    and `symlinks` (name -> target, stored the way Info-ZIP stores links)."""
    buffer = io.BytesIO()
    stamp = time.localtime(1_560_000_000)[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if name in executable else 0o644
            info.external_attr = ((stat.S_IFDIR | 0o755) if name.endswith("/") else (stat.S_IFREG | mode)) << 16
            zf.writestr(info, content.encode() if isinstance(content, str) else content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def html_page(title: str, status: int = 200) -> web.Response:
    """An HTML page titled `title`: a landing page, as the real sites answer a record's
    URL, or their error page for another `status`."""
    return web.Response(
        status=status,
        text=f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>",
        content_type="text/html",
    )
