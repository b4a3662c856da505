"""The `figshare` provider: a Figshare article by DOI, BinderHub's spec `<figshare-DOI>`
(e.g. figshare/10.6084/m9.figshare.9782777.v1).

The DOI leads to the article's page (…/articles/<type>/<title>/<id>/<version>);
the article id and version number are BinderHub's resolved_ref ("9782777.v1").
A DOI without a version takes the version Figshare's API calls current, where
BinderHub assumes version 1.
"""

from __future__ import annotations

from services.runtime.hosts import Site
from services.runtime.settings import ProviderSettings

from .base import ProviderError, ResolvedSource
from .datahttp import DataHttp, DataProvider, doi_with_record, normalize_doi

__all__ = ["FigshareProvider", "parse_article_url"]


def parse_article_url(path: str) -> tuple[str, str | None] | None:
    """(article id, version or None) from an article page's path. Pure.

    Accepts /articles/<type>/<title>/<id>[/<version>], the older
    /articles/<title>/<id>[/<version>] and /account/articles/<id>.
    """
    parts = [p for p in path.split("/") if p]
    if "articles" not in parts:
        return None
    tail = parts[parts.index("articles") + 1:]
    if len(tail) >= 2 and tail[-1].isdigit() and tail[-2].isdigit():
        return tail[-2], tail[-1]
    if tail and tail[-1].isdigit():
        return tail[-1], None
    return None


class FigshareProvider(DataProvider):
    """figshare.com (and its subdomains) with its API at settings.figshare_api_url."""

    name = "figshare"
    display = "Figshare"
    example = "10.6084/m9.figshare.9782777.v1"

    def __init__(self, settings: ProviderSettings) -> None:
        self.site = Site(settings.figshare_url, subdomains=True)
        self.api = Site(settings.figshare_api_url)
        super().__init__(settings, [self.site, self.api])

    def article_of(self, url: str) -> tuple[str, str | None] | None:
        path = self.site.path_of(url)
        return parse_article_url(path) if path else None

    def claims(self, url: str) -> bool:
        return self.article_of(url) is not None

    async def resolve_landing(self, http: DataHttp, doi: str, landing: str) -> ResolvedSource:
        found = self.article_of(landing)
        assert found is not None
        article_id, version = found
        path = f"/articles/{article_id}/versions/{version}" if version else f"/articles/{article_id}"
        what = f"Figshare article {article_id}" + (f" version {version}" if version else "")
        article = await http.get_json(self.api.url(path), what=what, service="Figshare")
        if not isinstance(article, dict):
            raise ProviderError(f"Figshare answered something unexpected for {what}.")
        version = str(article.get("version") or version or "")
        if not version.isdigit():
            raise ProviderError(f"Figshare did not say which version {what} is.")
        files = [f for f in article.get("files") or [] if isinstance(f, dict) and not f.get("is_link_only")]
        if not files:
            raise ProviderError(f"Figshare article {article_id} version {version} has no files that can be downloaded.")
        record_id = f"{article_id}.v{version}"
        version_doi = normalize_doi(str(article.get("doi") or ""))
        if version_doi is None or not version_doi.lower().endswith(f".v{version}"):
            version_doi = doi_with_record(doi, "figshare", record_id)
        return self.pinned(
            record_id=record_id,
            site=self.api,
            repo_url=doi,
            ref_url=self.doi_url(version_doi),
            clone_url=self.api.url(f"/articles/{article_id}/versions/{version}"),
            persistent_spec=version_doi,
        )
