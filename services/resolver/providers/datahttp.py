"""Shared plumbing of the data-repository providers (zenodo, figshare, hydroshare,
dataverse, ckan and doi): configured sites, DOIs, and an HTTP client that only
talks to configured hosts and turns every failure into a message for a person.

Every API base URL comes from settings.providers. A request to any other host,
including one a redirect points at, is refused: the resolver only ever asks the
services this Binder was configured to serve.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable, Iterable, Protocol

import aiohttp
import yarl

from .base import ProviderError, ResolvedSource

__all__ = [
    "Site",
    "DataHttp",
    "normalize_doi",
    "content_ref",
    "describe_url",
    "epoch_of",
    "sites_from",
    "DoiTarget",
    "resolve_via_doi",
    "USER_AGENT",
]

USER_AGENT = "binderflow (BinderHub-compatible; +https://mybinder.readthedocs.io)"
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_HOPS = 6
# Crossref's advice for matching DOIs, loosened to any non-space suffix.
_DOI_RE = re.compile(r"^10\.\d{4,9}/\S+\Z")
_DOI_URL_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/")


def normalize_doi(text: str, resolver_url: str = "") -> str | None:
    """The bare DOI in `text` ("doi:10.1/x", "https://doi.org/10.1/x", "10.1/x"), or None.

    Pure. The DOI keeps its case as written (DOIs are case-insensitive).
    """
    text = urllib.parse.unquote(text.strip()) if "%2F" in text or "%2f" in text else text.strip()
    lowered = text.lower()
    prefixes = list(_DOI_URL_PREFIXES)
    if resolver_url:
        prefixes.append(resolver_url.rstrip("/") + "/")
    for prefix in prefixes:
        if lowered.startswith(prefix.lower()):
            text = text[len(prefix):]
            break
    else:
        if lowered.startswith("doi:"):
            text = text[4:]
    text = text.strip("/")
    return text if _DOI_RE.match(text) else None


def content_ref(provider: str, *parts: str) -> str:
    """A 40-hex stand-in for a commit: names one version of a record, forever.

    Data repositories have record ids, version numbers or modification times
    where Git has commits; binderflow pins environments by a sha, so the
    provider, the API it asked and the record's version are hashed into one.
    """
    return hashlib.sha1("\0".join((provider, *parts)).encode()).hexdigest()


def describe_url(url: str) -> str:
    """A URL shortened for messages: scheme, host and path, no query or credentials."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


@dataclass(frozen=True)
class Site:
    """One configured base URL (e.g. https://zenodo.org, https://data.example.org/ckan).

    `subdomains` also accepts hosts below this one (ndownloader.figshare.com for
    figshare.com, an institution's portal on a subdomain).
    """

    base: str
    subdomains: bool = False

    @property
    def _parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.base.rstrip("/"))

    @property
    def prefix(self) -> str:
        """The path the site lives under, without a trailing '/' ("" at the root)."""
        return self._parts.path.rstrip("/")

    @property
    def host(self) -> str:
        return (self._parts.hostname or "").lower()

    def owns(self, url: str) -> bool:
        """Is `url` on this site's host (and port)? The path is not looked at."""
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.username or parts.password:
            return False
        host = (parts.hostname or "").lower()
        mine = self._parts
        if host == self.host:
            if (port or _default_port(parts.scheme)) == (mine.port or _default_port(mine.scheme)):
                return True
            # DOIs are often registered with http:// URLs of https:// sites (which redirect).
            return parts.scheme == "http" and port in (None, 80) and mine.scheme == "https" and mine.port in (None, 443)
        if self.subdomains and "." in self.host and not _is_ip(self.host):
            return host.endswith("." + self.host) and port in (None, 80, 443)
        return False

    def path_of(self, url: str) -> str | None:
        """The path of `url` below this site's prefix ("/records/1"), or None if elsewhere."""
        if not self.owns(url):
            return None
        path = urllib.parse.urlsplit(url).path
        prefix = self.prefix
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            return None
        return path[len(prefix):] or "/"

    def url(self, path: str) -> str:
        """An absolute URL on this site: base + path ("/api/records/1")."""
        return self.base.rstrip("/") + path


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _is_ip(host: str) -> bool:
    return bool(re.match(r"^[0-9.]+\Z", host)) or ":" in host


def sites_from(urls: Iterable[str], subdomains: bool = False) -> list[Site]:
    return [Site(u, subdomains) for u in urls if u]


def _status_text(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


class DataHttp:
    """One resolution's HTTP client, used as `async with DataHttp(...) as http`.

    Talks only to `sites`, redirects included; every request has a total
    timeout; failures become ProviderError with a message for a person.
    """

    def __init__(self, service: str, sites: list[Site], timeout_seconds: float) -> None:
        self.service = service
        self.sites = sites
        self.timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "DataHttp":
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_seconds),
            headers={"User-Agent": USER_AGENT},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def allows(self, url: str) -> bool:
        return any(site.owns(url) for site in self.sites)

    def _refuse(self, url: str, why: str = "") -> ProviderError:
        hosts = ", ".join(sorted({s.base for s in self.sites}))
        return ProviderError(
            f"{why or 'Refusing to contact'} {describe_url(url)}: that host is not one this Binder is configured to use "
            f"(configured: {hosts})."
        )

    async def _send(self, url: str, service: str, accept: str) -> tuple[int, str, bytes]:
        """GET `url` once, no redirects: (status, Location, body)."""
        assert self._session is not None, "use DataHttp as an async context manager"
        try:
            async with self._session.get(
                yarl.URL(url, encoded=True), allow_redirects=False, headers={"Accept": accept}
            ) as resp:
                location = resp.headers.get("Location", "")
                body = b"" if resp.status in _REDIRECTS else await _read_limited(resp, service, url)
                return resp.status, location, body
        except asyncio.TimeoutError:
            raise ProviderError(
                f"{service} did not answer within {self.timeout_seconds:g} s ({describe_url(url)}); try again later."
            ) from None
        except aiohttp.ClientError as exc:
            reason = str(exc) or type(exc).__name__
            raise ProviderError(f"Could not reach {service} at {describe_url(url)}: {reason}") from None
        except ValueError as exc:
            raise ProviderError(f"{describe_url(url)} is not a URL that can be fetched: {exc}") from None

    async def get(self, url: str, *, service: str = "", accept: str = "application/json") -> tuple[int, str, bytes]:
        """GET `url`, following redirects within the configured sites: (status, final URL, body)."""
        service = service or self.service
        for _ in range(_MAX_HOPS):
            if not self.allows(url):
                raise self._refuse(url)
            status, location, body = await self._send(url, service, accept)
            if status in _REDIRECTS and location:
                target = urllib.parse.urljoin(url, location)
                if not self.allows(target):
                    raise self._refuse(target, f"{service} redirected {describe_url(url)} to")
                url = target
                continue
            return status, url, body
        raise ProviderError(f"{service} redirected {describe_url(url)} too many times.")

    async def get_json(self, url: str, *, what: str, service: str = "") -> Any:
        """GET a JSON document describing `what` ("Zenodo record 123"); ProviderError otherwise."""
        service = service or self.service
        status, final, body = await self.get(url, service=service)
        if status == 200:
            try:
                return json.loads(body)
            except ValueError:
                raise ProviderError(f"{service} answered {describe_url(final)} with something that is not JSON; is it really {service}?") from None
        raise ProviderError(self.status_message(status, what, final, service, body))

    def status_message(self, status: int, what: str, url: str, service: str, body: bytes = b"") -> str:
        where = describe_url(url)
        if status in (404, 410):
            detail = "was deleted" if status == 410 else "does not exist"
            return f"{what} {detail} ({service} answered {_status_text(status)} for {where})."
        if status in (401, 403):
            return f"{what} is not public: {service} answered {_status_text(status)} for {where}."
        if status == 429:
            return f"{service} is limiting requests right now (429 Too Many Requests); try again in a few minutes."
        if status >= 500:
            return f"{service} had a problem answering for {what} ({_status_text(status)} from {where}); try again later."
        hint = _error_detail(body)
        return f"{service} refused the request for {what} ({_status_text(status)} from {where}){': ' + hint if hint else ''}."

    async def follow_doi(self, resolver: Site, doi: str, arrived: Callable[[str], bool]) -> str:
        """Where `doi` leads: the first URL `arrived` accepts, the first URL outside the
        configured sites (not fetched), or the page the redirects end on.

        Follows the DOI resolver's redirects (and a repository's own, e.g. a
        concept DOI to its latest version) without fetching the landing page.
        """
        url = resolver.url("/" + urllib.parse.quote(doi, safe="/"))
        if not self.allows(url):
            raise self._refuse(url)
        for hop in range(_MAX_HOPS):
            if hop and (arrived(url) or not self.allows(url)):
                return url
            service = "the DOI resolver" if hop == 0 else self._service_of(url)
            status, location, body = await self._send(url, service, "text/html,application/json;q=0.9,*/*;q=0.8")
            if status in _REDIRECTS and location:
                url = urllib.parse.urljoin(url, location)
                continue
            if status == 200 and hop:
                return url
            if hop == 0 and status == 404:
                raise ProviderError(f"The DOI {doi} is not registered: {resolver.base} knows no such DOI. Check it for typos.")
            if status == 200:
                raise ProviderError(f"The DOI resolver {resolver.base} answered the DOI {doi} with a page instead of a redirect.")
            raise ProviderError(self.status_message(status, f"The DOI {doi}", url, service, body))
        raise ProviderError(f"The DOI {doi} redirected too many times.")

    def _service_of(self, url: str) -> str:
        try:
            return urllib.parse.urlsplit(url).hostname or "the repository"
        except ValueError:
            return "the repository"


_MAX_BODY = 16 * 1024 * 1024


async def _read_limited(resp: aiohttp.ClientResponse, service: str, url: str) -> bytes:
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(256 * 1024):
        size += len(chunk)
        if size > _MAX_BODY:
            raise ProviderError(f"{service} answered {describe_url(url)} with more than {_MAX_BODY // (1024 * 1024)} MB; that is not metadata.")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_detail(body: bytes) -> str:
    """A short error text from a JSON error body (Zenodo, Dataverse, CKAN, Figshare shapes)."""
    try:
        data = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    for candidate in (data.get("message"), data.get("detail"), (data.get("error") or {}).get("message") if isinstance(data.get("error"), dict) else None):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()[:200]
    return ""


def epoch_of(timestamp: str) -> int:
    """Seconds since the epoch of an ISO 8601 time; a time without a zone is UTC.

    BinderHub and repo2docker name HydroShare and CKAN versions by their
    modification time, truncated to the second.
    """
    text = timestamp.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return int(parsed.timestamp())


class DoiTarget(Protocol):
    """A provider whose records a DOI can lead to (the `doi` provider dispatches on it)."""

    name: str
    display: str
    example: str

    def sites(self) -> list[Site]:
        """Where its records and APIs live."""
        ...

    def claims(self, url: str) -> bool:
        """Is `url` the landing page of one of its records? Pure."""
        ...

    async def resolve_landing(self, http: DataHttp, doi: str, landing: str) -> ResolvedSource:
        """Pin the record whose landing page is `landing`, reached from `doi`."""
        ...


async def resolve_via_doi(target: DoiTarget, settings: Any, spec: str) -> ResolvedSource:
    """BinderHub's way for DOI specs: follow the DOI resolver to the record's page."""
    doi = normalize_doi(spec, settings.doi_resolver_url)
    if doi is None:
        raise ProviderError(
            f"The spec {spec!r} is not a DOI: the {target.name} provider expects a {target.display} DOI "
            f"such as {target.name}/{target.example}"
        )
    resolver = Site(settings.doi_resolver_url)
    async with DataHttp(target.display, [resolver, *target.sites()], settings.http_timeout_seconds) as http:
        landing = await http.follow_doi(resolver, doi, target.claims)
        if not target.claims(landing):
            where = ", ".join(s.base for s in target.sites())
            raise ProviderError(
                f"The DOI {doi} leads to {describe_url(landing)}, which is not a {target.display} record "
                f"(this Binder's {target.display}: {where}). Launch it as doi/{doi} to let the DOI pick the provider."
            )
        return await target.resolve_landing(http, doi, landing)
