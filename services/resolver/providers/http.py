"""A small HTTP client for the REST APIs providers ask (GitHub, GitLab).

One aiohttp session per provider, created on first use in the running loop; a
total timeout on every request; an in-memory cache keyed by URL that keeps each
answer's ETag and body, revalidates with If-None-Match and reuses the body when
the API answers 304 (GitHub does not count such answers against its rate limit).

Credentials travel in headers given once at construction and are never logged,
cached under or put into a message. Redirects are followed only within the API's
own origin, so a token is never sent to another host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import aiohttp
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from services.runtime.hosts import REDIRECT_STATUSES, status_text

from .base import ProviderError

__all__ = ["ApiClient", "ApiResponse", "ResponseCache", "CachedBody", "answer_error"]

log = logging.getLogger(__name__)

_MAX_REDIRECTS = 3


@dataclass(frozen=True)
class ApiResponse:
    """An API answer. `revalidated`: the API said 304 and `body` is the cached one."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    revalidated: bool = False

    def json(self) -> Any:
        """The body as JSON; ProviderError if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ProviderError("The API answered with something that is not JSON") from None


@dataclass(frozen=True)
class CachedBody:
    etag: str
    body: bytes
    stored_at: float


class ResponseCache:
    """ETag and body of earlier 200 answers, by URL, each kept `max_age` seconds.

    Least recently used entries go first once `max_entries` is reached. The clock
    is injectable so expiry is testable without waiting.
    """

    def __init__(self, max_age: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, CachedBody] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_age > 0 and self.max_entries > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str) -> CachedBody | None:
        entry = self._entries.get(url)
        if entry is None:
            return None
        if self._clock() - entry.stored_at >= self.max_age:
            del self._entries[url]
            return None
        self._entries.move_to_end(url)
        return entry

    def put(self, url: str, etag: str, body: bytes) -> None:
        if not self.enabled or not etag:
            return
        self._entries[url] = CachedBody(etag, body, self._clock())
        self._entries.move_to_end(url)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def refresh(self, url: str) -> None:
        """The API confirmed the entry (304): keep it for another max_age."""
        entry = self._entries.get(url)
        if entry is not None:
            self._entries[url] = CachedBody(entry.etag, entry.body, self._clock())


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class ApiClient:
    """GET requests to one API, by a provider that owns this client.

    `name` says in messages what did not answer ("the GitHub API"). Transport
    failures (timeout, refused connection, oversized answer) raise ProviderError;
    every HTTP status is returned for the provider to interpret.
    """

    def __init__(
        self,
        name: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float = 30.0,
        cache_seconds: float = 300.0,
        max_body_bytes: int = 16 * 1024 * 1024,
        cache: ResponseCache | None = None,
    ) -> None:
        self.name = name
        self.timeout_seconds = timeout_seconds
        self.max_body_bytes = max_body_bytes
        self.cache = cache if cache is not None else ResponseCache(cache_seconds)
        # Private on purpose: these may hold a token.
        self.__headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"ApiClient({self.name!r})"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
                headers=self.__headers,
                # Cookies from an API are of no use and would only leak between launches.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def get(self, url: str) -> ApiResponse:
        """GET `url` (already percent-encoded), revalidating a cached answer."""
        cached = self.cache.get(url) if self.cache.enabled else None
        extra = {"If-None-Match": cached.etag} if cached else {}
        try:
            status, headers, body = await asyncio.wait_for(self._fetch(url, extra), self.timeout_seconds)
        except asyncio.TimeoutError:
            log.info("%s: no answer to GET %s within %g s", self.name, url, self.timeout_seconds)
            raise ProviderError(
                f"{self.name} did not answer within {self.timeout_seconds:g} seconds; it may be slow or down, try again in a few minutes"
            ) from None
        except aiohttp.ClientError as exc:
            log.info("%s: GET %s failed: %s", self.name, url, type(exc).__name__)
            raise ProviderError(f"Could not reach {self.name} ({type(exc).__name__}); try again in a few minutes") from None
        if status == 304 and cached is not None:
            log.debug("%s: %s not modified, using the cached answer", self.name, url)
            self.cache.refresh(url)
            return ApiResponse(200, headers, cached.body, revalidated=True)
        if status == 200:
            etag = headers.get("ETag", "")
            if etag:
                self.cache.put(url, etag, body)
        return ApiResponse(status, headers, body)

    async def _fetch(self, url: str, extra: Mapping[str, str]) -> tuple[int, CIMultiDictProxy[str], bytes]:
        session = self._get_session()
        origin = _origin(url)
        for _ in range(_MAX_REDIRECTS + 1):
            log.debug("%s: GET %s", self.name, url)
            async with session.get(yarl.URL(url, encoded=True), headers=dict(extra), allow_redirects=False) as resp:
                if resp.status in REDIRECT_STATUSES and "Location" in resp.headers:
                    target = urllib.parse.urljoin(url, resp.headers["Location"])
                    if _origin(target) != origin:
                        # Never carry credentials to another host.
                        raise ProviderError(f"{self.name} redirected to another host; not following")
                    url = target
                    continue
                body = await self._read(resp)
                return resp.status, CIMultiDictProxy(CIMultiDict(resp.headers)), body
        raise ProviderError(f"{self.name} redirected too many times")

    async def _read(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self.max_body_bytes:
                raise ProviderError(f"{self.name} sent an answer larger than {self.max_body_bytes // (1024 * 1024)} MiB")
            chunks.append(chunk)
        return b"".join(chunks)


def answer_error(site: str, status: int, what: str) -> ProviderError:
    """What to tell a person when `site`'s API ("GitHub") answered a lookup of `what`
    with a status its provider has no better words for: refused credentials, a
    server error, anything else unexpected."""
    if status == 401:
        # The operator's token is wrong or revoked: their problem, so it is logged for them.
        log.error("the %s API refused the configured token (401)", site)
        return ProviderError(
            f"The {site} API refused this Binder's credentials ({status_text(status)}); please tell the Binder's administrators."
        )
    if status >= 500:
        return ProviderError(
            f"The {site} API failed with {status} while looking up {what}; {site} may be having problems, try again in a few minutes."
        )
    return ProviderError(f"Unexpected answer {status} from the {site} API while looking up {what}")
