"""Shared machinery of the data-repository fetchers (zenodo, figshare, hydroshare,
dataverse, ckan): download a record's files and unpack an archive safely.

What is fetched follows repo2docker: a record holding a single zip archive is
unpacked (and a single top-level folder in it flattened), any other record's
files are placed as they are.

Hostile input is assumed throughout:
- the first request for anything goes to a configured host only (the record's
  API, and the file URLs the API lists); a download may then be redirected to
  storage elsewhere (Dataverse and Zenodo hand out object-store URLs), but only
  to hosts that pass the same network checks as Git URLs;
- file names from metadata and archives are relative paths without '..';
  absolute paths, '..' and symbolic links refuse the whole archive;
- downloads and unpacked bytes are counted against limits, and every request
  has a connect and read timeout inside an overall deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import time
import urllib.parse
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, AsyncGenerator, AsyncIterator, Callable

import aiohttp
import yarl

from schemas import ResolvedRepo
from services.runtime.addresses import GuardedResolver
from services.runtime.gitcmd import GitError, GitPolicy, check_url
from services.runtime.hosts import REDIRECT_STATUSES, USER_AGENT, Site, describe_url, status_text

from ..errors import BuildError

__all__ = [
    "Limits",
    "RecordFile",
    "DataFetcher",
    "ListedFilesFetcher",
    "counted",
    "Transfer",
    "safe_relative_path",
    "extract_zip",
    "move_contents",
    "human_size",
]

_MAX_HOPS = 6
_CHUNK = 256 * 1024


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


@dataclass(frozen=True)
class Limits:
    # Bytes downloaded for one record, and bytes unpacked from its archive.
    max_bytes: int = 5 * 1024**3
    # Files in one record or archive.
    max_files: int = 20_000
    # Connecting, and silence while reading, per request.
    http_timeout_seconds: float = 30.0
    # The whole fetch; None for no limit.
    fetch_timeout_seconds: float | None = 1800.0


@dataclass(frozen=True)
class RecordFile:
    """One file of a record: its path as the repository names it, and where to get it."""

    name: str
    url: str
    size: int | None = None
    md5: str | None = None


def safe_relative_path(name: str, where: str = "The record") -> PurePosixPath:
    """`name` as a relative path that stays inside the folder it is placed in. Pure.

    Backslashes count as separators (archives made on Windows); absolute paths,
    drive letters and '..' are refused with BuildError.
    """
    if not name or "\x00" in name:
        raise BuildError(f"{where} contains a file with an empty or invalid name.")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm):
        raise BuildError(f"{where} contains a file with an absolute path ({name[:200]!r}); refusing to unpack it.")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise BuildError(f"{where} contains a path that leads outside its folder ({name[:200]!r}); refusing to unpack it.")
    if not parts:
        raise BuildError(f"{where} contains a file with an empty name ({name[:200]!r}).")
    return PurePosixPath(*parts)


def extract_zip(
    archive: Path,
    dest: Path,
    limits: Limits,
    select: Callable[[PurePosixPath], PurePosixPath | None] | None = None,
    label: str = "the archive",
) -> int:
    """Unpack `archive` into `dest` (created); returns the number of files written.

    Every member is checked before anything is written: a symbolic link, an
    absolute path or '..' anywhere refuses the whole archive. `select` maps a
    member's path to where it goes (or None to leave it out). Unpacked bytes
    are counted as they are written, whatever the archive claims.
    """
    where = f"The archive {label}"
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise BuildError(f"{label} is not a readable zip archive.") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            raise BuildError(f"{where} holds {len(infos)} entries, more than this Binder unpacks ({limits.max_files}).")
        plan: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise BuildError(f"{where} contains a symbolic link ({info.filename[:200]!r}); archives with links are not unpacked, for safety.")
            rel = safe_relative_path(info.filename, where)
            if info.flag_bits & 0x1:
                raise BuildError(f"{where} is encrypted ({info.filename[:200]!r}); it cannot be unpacked.")
            chosen = select(rel) if select else rel
            if chosen is not None:
                plan.append((info, chosen))
        claimed = sum(info.file_size for info, _ in plan)
        if claimed > limits.max_bytes:
            raise BuildError(f"{where} unpacks to {human_size(claimed)}, more than this Binder unpacks ({human_size(limits.max_bytes)}).")
        dest.mkdir(parents=True, exist_ok=False)
        root = os.path.realpath(dest)
        written = files = 0
        try:
            for info, rel in plan:
                target = dest / rel
                if not os.path.realpath(target).startswith(root + os.sep):
                    raise BuildError(f"{where} contains a path that leads outside its folder ({info.filename[:200]!r}).")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > limits.max_bytes:
                            raise BuildError(f"{where} unpacks to more than this Binder unpacks ({human_size(limits.max_bytes)}).")
                        out.write(chunk)
                files += 1
                if (info.external_attr >> 16) & 0o111:
                    target.chmod(0o755)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise BuildError(f"{where} is damaged and cannot be unpacked ({exc}).") from None
        except OSError as exc:
            raise BuildError(f"Could not unpack {label}: {exc.strerror or exc}.") from None
        return files


def move_contents(src: Path, dest: Path, flatten: bool) -> list[str]:
    """Move what `src` holds into `dest` and remove `src`; with `flatten`, a single
    top-level folder in `src` gives its contents instead (repo2docker's rule).
    Returns the names now in `dest` that came from `src`."""
    entries = list(src.iterdir())
    origin = entries[0] if flatten and len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() else src
    moved = []
    for child in list(origin.iterdir()):
        os.replace(child, dest / child.name)
        moved.append(child.name)
    shutil.rmtree(src)
    return sorted(moved)


class Transfer:
    """The HTTP side of one fetch: one session, one deadline, one byte budget."""

    def __init__(self, fetcher: "DataFetcher", session: aiohttp.ClientSession) -> None:
        self.fetcher = fetcher
        self.session = session
        self.limits = fetcher.limits
        timeout = self.limits.fetch_timeout_seconds
        self.deadline = time.monotonic() + timeout if timeout else None
        self.downloaded = 0

    @property
    def service(self) -> str:
        return self.fetcher.display

    def check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BuildError(
                f"Fetching from {self.service} took longer than {self.limits.fetch_timeout_seconds:g} s and was stopped."
            )

    def on_configured_host(self, url: str) -> bool:
        return any(site.owns(url) for site in self.fetcher.sites)

    async def _check_hop(self, url: str, first: bool, strict: bool, what: str) -> None:
        if self.on_configured_host(url):
            return
        hosts = ", ".join(s.base for s in self.fetcher.sites)
        if first or strict:
            raise BuildError(
                f"Refusing to fetch {what} from {describe_url(url)}: that host is not one this Binder is configured to use for {self.service} ({hosts})."
            )
        # A download redirected to storage elsewhere: only to hosts Git would be allowed to fetch from.
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise BuildError(f"{self.service} redirected the download of {what} to {describe_url(url)}, which is not an http(s) URL.")
        try:
            await check_url(url, self.fetcher.git_policy)
        except GitError as exc:
            raise BuildError(f"{self.service} redirected the download of {what} to {describe_url(url)}, which is refused: {exc}") from None

    @contextlib.asynccontextmanager
    async def open(self, url: str, what: str, *, strict: bool = False, accept: str = "*/*") -> AsyncIterator[aiohttp.ClientResponse]:
        """The response for `url` after redirects (any status). `strict`: redirects stay on configured hosts."""
        for hop in range(_MAX_HOPS):
            self.check_deadline()
            await self._check_hop(url, hop == 0, strict, what)
            try:
                resp = await self.session.get(yarl.URL(url, encoded=True), allow_redirects=False, headers={"Accept": accept})
            except asyncio.TimeoutError:
                raise self._timeout(what) from None
            except aiohttp.ClientError as exc:
                raise BuildError(f"Could not reach {self.service} for {what} ({describe_url(url)}): {exc or type(exc).__name__}") from None
            except ValueError as exc:
                raise BuildError(f"{what}: {describe_url(url)} is not a URL that can be fetched ({exc}).") from None
            if resp.status in REDIRECT_STATUSES and resp.headers.get("Location"):
                location = resp.headers["Location"]
                resp.release()
                url = urllib.parse.urljoin(url, location)
                continue
            try:
                yield resp
            except asyncio.TimeoutError:
                raise self._timeout(what) from None
            except aiohttp.ClientError as exc:
                raise BuildError(f"The connection to {self.service} broke while fetching {what}: {exc or type(exc).__name__}") from None
            finally:
                resp.release()
            return
        raise BuildError(f"{self.service} redirected {what} too many times.")

    def _timeout(self, what: str) -> BuildError:
        return BuildError(
            f"{self.service} stopped answering while fetching {what} (nothing for {self.limits.http_timeout_seconds:g} s); try again later."
        )

    def status_error(self, status: int, what: str, url: str) -> BuildError:
        where = describe_url(url)
        if status in (404, 410):
            return BuildError(f"{what} is no longer available: {self.service} answered {status_text(status)} for {where}.")
        if status in (401, 403):
            return BuildError(f"{what} is not public: {self.service} answered {status_text(status)} for {where}.")
        if status == 429:
            return BuildError(f"{self.service} is limiting requests right now (429 Too Many Requests); try again in a few minutes.")
        if status >= 500:
            return BuildError(f"{self.service} had a problem serving {what} ({status_text(status)} from {where}); try again later.")
        return BuildError(f"{self.service} refused {what} ({status_text(status)} from {where}).")

    async def get_json(self, url: str, what: str) -> Any:
        """A JSON document from a configured host (redirects included)."""
        async with self.open(url, what, strict=True, accept="application/json") as resp:
            if resp.status != 200:
                raise self.status_error(resp.status, what, url)
            body = await self._read_limited(resp, 32 * 1024 * 1024, what)
        try:
            return json.loads(body)
        except ValueError:
            raise BuildError(f"{self.service} answered {what} with something that is not JSON.") from None

    async def _read_limited(self, resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
        chunks, size = [], 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise BuildError(f"{self.service} answered {what} with more than {human_size(limit)} of metadata.")
            chunks.append(chunk)
            self.check_deadline()
        return b"".join(chunks)

    async def save(self, resp: aiohttp.ClientResponse, dest: Path, what: str, md5: str | None = None) -> int:
        """Stream a 200 response into `dest`, within the byte budget; returns its size."""
        left = self.limits.max_bytes - self.downloaded
        if resp.content_length is not None and resp.content_length > left:
            raise self._too_big(what)
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        with open(dest, "wb") as out:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > left:
                    raise self._too_big(what)
                out.write(chunk)
                digest.update(chunk)
                self.check_deadline()
        self.downloaded += size
        if md5 and digest.hexdigest().lower() != md5.strip().lower():
            raise BuildError(f"The download of {what} is damaged (its MD5 checksum differs from what {self.service} lists); try again.")
        return size

    def _too_big(self, what: str) -> BuildError:
        return BuildError(
            f"{what} is larger than this Binder downloads for one record ({human_size(self.limits.max_bytes)} in all)."
        )

    async def download(self, url: str, dest: Path, what: str, md5: str | None = None) -> int:
        async with self.open(url, what) as resp:
            if resp.status != 200:
                raise self.status_error(resp.status, what, url)
            return await self.save(resp, dest, what, md5)

    async def place(self, files: list[RecordFile], workdir: Path, record: str) -> AsyncIterator[str]:
        """Put a record's files into `workdir`: a single zip archive unpacked, else as they are."""
        if not files:
            raise BuildError(f"{record} has no files to download.")
        if len(files) > self.limits.max_files:
            raise BuildError(f"{record} holds {len(files)} files, more than this Binder fetches ({self.limits.max_files}).")
        claimed = sum(f.size or 0 for f in files)
        if claimed > self.limits.max_bytes:
            raise BuildError(f"{record} holds {human_size(claimed)}, more than this Binder downloads ({human_size(self.limits.max_bytes)}).")
        # Every name is checked before anything is written.
        paths = [safe_relative_path(f.name, record) for f in files]
        for f in files:
            if not self.on_configured_host(f.url):
                raise BuildError(f"{record} lists {f.name!r} at {describe_url(f.url)}, which is not on {self.service} as configured here.")
        if len(files) == 1 and paths[0].suffix.lower() == ".zip":
            only, path = files[0], paths[0]
            archive = workdir / f".binderflow-download-{uuid.uuid4().hex}.zip"
            yield f"Downloading {path}" + (f" ({human_size(only.size)})" if only.size else "")
            await self.download(only.url, archive, str(path), only.md5)
            if zipfile.is_zipfile(archive):
                yield f"Extracting {path}"
                staging = workdir / f".binderflow-extract-{uuid.uuid4().hex}"
                try:
                    count = await asyncio.to_thread(extract_zip, archive, staging, self.limits, None, str(path))
                    archive.unlink()
                    names = await asyncio.to_thread(move_contents, staging, workdir, True)
                finally:
                    archive.unlink(missing_ok=True)
                    shutil.rmtree(staging, ignore_errors=True)
                yield f"Unpacked {count} files: {_listing(names)}"
                return
            os.replace(archive, workdir / path)
            yield f"{path} is not a zip archive; kept as it is"
            return
        for f, path in zip(files, paths):
            dest = workdir / path
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
            except OSError:
                raise BuildError(f"{record} lists {path.parent} both as a file and as a folder.") from None
            if dest.is_dir():
                raise BuildError(f"{record} lists {path} both as a file and as a folder.")
            yield f"Downloading {path}" + (f" ({human_size(f.size)})" if f.size else "")
            await self.download(f.url, dest, str(path), f.md5)
        yield f"Fetched {len(files)} files ({human_size(self.downloaded)})"


def _listing(names: list[str], shown: int = 12) -> str:
    text = ", ".join(names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


@dataclass
class DataFetcher:
    """Base of the data-repository fetchers; subclasses implement `_fetch`."""

    sites: list[Site]
    git_policy: GitPolicy = field(default_factory=GitPolicy)
    limits: Limits = field(default_factory=Limits)
    display = "the data repository"

    async def fetch(self, repo: ResolvedRepo, workdir: Path) -> AsyncGenerator[str, None]:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.limits.http_timeout_seconds, sock_read=self.limits.http_timeout_seconds
        )
        # Names resolve under the address policy when connecting, not only when a redirect
        # is checked: a storage host cannot rebind to an internal address in between.
        # The configured sites are the operator's and are trusted as named.
        resolver = GuardedResolver(self.git_policy.addresses, trusted_hosts=(site.host for site in self.sites))
        connector = aiohttp.TCPConnector(resolver=resolver)
        async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT}, connector=connector) as session:
            transfer = Transfer(self, session)
            async for line in self._fetch(transfer, repo, workdir):
                yield line

    def _fetch(self, t: Transfer, repo: ResolvedRepo, workdir: Path) -> AsyncIterator[str]:
        raise NotImplementedError

    @staticmethod
    def limits_from_settings(settings: Any) -> Limits:
        build_timeout = settings.builder.build_timeout_seconds
        return Limits(
            max_bytes=settings.builder.download_max_bytes,
            max_files=settings.builder.download_max_files,
            http_timeout_seconds=settings.providers.http_timeout_seconds,
            fetch_timeout_seconds=build_timeout if build_timeout else None,
        )


def counted(n: int, noun: str) -> str:
    """"1 file", "3 files": a count for log lines."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class ListedFilesFetcher(DataFetcher):
    """A fetcher for repositories whose record answer lists every file with its URL
    (Zenodo, Figshare): read the record at `clone_url`, then place its files."""

    # What a record is called in log lines and messages ("Zenodo record").
    record_kind = "Record"

    def files_of(self, answer: Any) -> list[RecordFile]:
        """The downloadable files of a record answer; BuildError if it is not a record. Pure."""
        raise NotImplementedError

    async def _fetch(self, t: Transfer, repo: ResolvedRepo, workdir: Path) -> AsyncIterator[str]:
        record = f"{self.record_kind} {repo.ref}"
        files = self.files_of(await t.get_json(repo.clone_url, record))
        yield f"{record} ({repo.repo_url}): {counted(len(files), 'file')}"
        async for line in t.place(files, workdir, record):
            yield line
