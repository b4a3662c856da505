"""Shared plumbing of the data-repository providers (zenodo, figshare, hydroshare,
dataverse, ckan and doi): their base class, DOIs, and an HTTP client that only
talks to configured hosts (services.runtime.hosts) and turns every failure into
a message for a person.

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
from datetime import datetime, timezone
from typing import Any, Callable

import aiohttp
import yarl

from services.runtime.hosts import REDIRECT_STATUSES, USER_AGENT, Site, describe_url, status_text
from services.runtime.settings import ProviderSettings, Settings

from .base import ProviderDirectory, ProviderError, ResolvedSource

__all__ = [
    "DataHttp",
    "DataProvider",
    "doi_with_record",
    "normalize_doi",
    "content_ref",
    "epoch_of",
]

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
                body = b"" if resp.status in REDIRECT_STATUSES else await _read_limited(resp, service, url)
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
            if status in REDIRECT_STATUSES and location:
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
            return f"{what} {detail} ({service} answered {status_text(status)} for {where})."
        if status in (401, 403):
            return f"{what} is not public: {service} answered {status_text(status)} for {where}."
        if status == 429:
            return f"{service} is limiting requests right now (429 Too Many Requests); try again in a few minutes."
        if status >= 500:
            return f"{service} had a problem answering for {what} ({status_text(status)} from {where}); try again later."
        hint = _error_detail(body)
        return f"{service} refused the request for {what} ({status_text(status)} from {where}){': ' + hint if hint else ''}."

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
            if status in REDIRECT_STATUSES and location:
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


def doi_with_record(doi: str, marker: str, record_id: str) -> str:
    """BinderHub's version DOI when a repository's API names none: `doi` with the part
    after `marker` replaced by the record ("10.5281/zenodo.1", "zenodo", "2" ->
    "10.5281/zenodo.2"), or `doi` itself when `marker` is not in it. Pure."""
    return doi.split(marker)[0] + f"{marker}.{record_id}" if marker in doi else doi


class DataProvider:
    """Base of the data-repository providers (zenodo, figshare, hydroshare, dataverse, ckan).

    Each serves records on configured `sites`, recognises their landing pages
    (`claims`) and pins the record a landing page shows (`resolve_landing`); the
    `doi` provider dispatches a DOI to whichever claims the page it leads to.
    `resolve` takes BinderHub's DOI spec; hydroshare and ckan, whose specs are
    ids or URLs, override it.
    """

    name = ""
    display = ""
    # A spec to show in messages (the part after "<name>/").
    example = ""

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "DataProvider":
        return cls(settings.providers)  # type: ignore[call-arg]  # subclasses take only their settings

    def __init__(self, settings: ProviderSettings, sites: list[Site]) -> None:
        self.settings = settings
        self._sites = list(sites)

    async def aclose(self) -> None:
        """Nothing to release: each resolve opens (and closes) its own HTTP session."""

    def sites(self) -> list[Site]:
        """Where its records and APIs live."""
        return list(self._sites)

    def claims(self, url: str) -> bool:
        """Is `url` the landing page of one of its records? Pure."""
        raise NotImplementedError

    async def resolve_landing(self, http: DataHttp, doi: str, landing: str) -> ResolvedSource:
        """Pin the record whose landing page is `landing`, reached from `doi` ("" when not reached by a DOI).

        Only called with a URL this provider `claims`; ProviderError otherwise.
        """
        raise NotImplementedError

    async def resolve(self, spec: str) -> ResolvedSource:
        """BinderHub's way for DOI specs: follow the DOI resolver to the record's page."""
        doi = normalize_doi(spec, self.settings.doi_resolver_url)
        if doi is None:
            raise ProviderError(
                f"The spec {spec!r} is not a DOI: the {self.name} provider expects a {self.display} DOI "
                f"such as {self.name}/{self.example}"
            )
        resolver = Site(self.settings.doi_resolver_url)
        async with DataHttp(self.display, [resolver, *self.sites()], self.settings.http_timeout_seconds) as http:
            landing = await http.follow_doi(resolver, doi, self.claims)
            if not self.claims(landing):
                where = ", ".join(s.base for s in self.sites())
                raise ProviderError(
                    f"The DOI {doi} leads to {describe_url(landing)}, which is not a {self.display} record "
                    f"(this Binder's {self.display}: {where}). Launch it as doi/{doi} to let the DOI pick the provider."
                )
            return await self.resolve_landing(http, doi, landing)

    def doi_url(self, doi: str) -> str:
        """Where the configured DOI resolver sends `doi`."""
        return f"{self.settings.doi_resolver_url.rstrip('/')}/{doi}"

    def pinned(
        self,
        *,
        record_id: str,
        site: Site,
        repo_url: str,
        ref_url: str,
        clone_url: str,
        persistent_spec: str,
        version: tuple[str, ...] = (),
    ) -> ResolvedSource:
        """The source for one version of a record: `record_id` (BinderHub's resolved ref,
        "3242074" or "9782777.v1") on `site`, fetched by the builder from `clone_url`.

        The resolved ref hashes this provider, the site and `version` (default: the
        record id), so the same version reached by any spec or DOI pins alike.
        """
        return ResolvedSource(
            repo_url=repo_url,
            ref=record_id,
            resolved_ref=content_ref(self.name, site.base, *(version or (record_id,))),
            ref_url=ref_url,
            clone_url=clone_url,
            persistent_spec=persistent_spec,
            content_provider=self.name,
        )
