"""A stand-in for Figshare (https://figshare.com and its API https://api.figshare.com/v2), on 127.0.0.1.

The internet is unreachable here, so one server plays both hosts: the API
under /v2 and the web site (landing pages, and file downloads that Figshare
serves from ndownloader.figshare.com) at the root. Answers follow Figshare's
public API (field names from recorded answers):

- GET /v2/articles/<id>                      -> the current version of the article
- GET /v2/articles/<id>/versions/<n>         -> one version: id, title, doi ("….v<n>"),
                                                version, files [{id, name, size, is_link_only,
                                                download_url, supplied_md5, computed_md5,
                                                mimetype}], url_public_html, defined_type_name, …
                                                404 {"message": "Entity not found: article",
                                                "code": "EntityNotFound"}
- GET /articles/<type>/<title>/<id>[/<n>]     -> the article's landing page (HTML)
- GET /ndownloader/files/<file id>           -> the file's bytes

Knobs: `fail` (article id -> status).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from .dataserver import StandIn, base_url_of, html_page, md5_of

__all__ = ["FigshareStandIn", "FigshareArticle"]


@dataclass
class FigshareArticle:
    id: int
    # version number -> {file name -> bytes}
    versions: dict[int, dict[str, bytes]]
    title: str = "Binder-ready openSenseMap Analysis"
    link_only: dict[str, str] = field(default_factory=dict)


class FigshareStandIn(StandIn):
    def __init__(self) -> None:
        self.articles: dict[int, FigshareArticle] = {}
        self.fail: dict[int, int] = {}
        self._files: dict[int, bytes] = {}
        super().__init__()

    @property
    def api_url(self) -> str:
        return self.server.url + "/v2"

    def add(self, article: FigshareArticle) -> FigshareArticle:
        self.articles[article.id] = article
        return article

    def landing(self, article_id: int, version: int | None = None) -> str:
        slug = self.articles[article_id].title.replace(" ", "_") if article_id in self.articles else "Untitled"
        return f"{self.url}/articles/dataset/{slug}/{article_id}" + (f"/{version}" if version else "")

    def _file_id(self, article_id: int, version: int, name: str) -> int:
        return article_id * 1000 + version * 100 + sorted(self.articles[article_id].versions[version]).index(name)

    def article_json(self, article: FigshareArticle, version: int, base: str) -> dict:
        files = []
        for name, data in sorted(article.versions[version].items()):
            file_id = self._file_id(article.id, version, name)
            self._files[file_id] = data
            files.append({
                "id": file_id,
                "name": name,
                "size": len(data),
                "is_link_only": False,
                "download_url": f"{base}/ndownloader/files/{file_id}",
                "supplied_md5": md5_of(data),
                "computed_md5": md5_of(data),
                "mimetype": "application/zip" if name.endswith(".zip") else "application/octet-stream",
            })
        for name, url in article.link_only.items():
            files.append({"id": 1, "name": name, "size": 0, "is_link_only": True, "download_url": url, "supplied_md5": "", "computed_md5": "", "mimetype": "text/html"})
        slug = article.title.replace(" ", "_")
        return {
            "files": files,
            "custom_fields": [],
            "authors": [{"id": 7175981, "full_name": "Binder Examples", "is_active": False, "url_name": "_", "orcid_id": ""}],
            "figshare_url": f"{base}/articles/dataset/{slug}/{article.id}",
            "description": "<div>A notebook and its requirements.</div>",
            "funding": None,
            "funding_list": [],
            "version": version,
            "status": "public",
            "size": sum(len(d) for d in article.versions[version].values()),
            "created_date": "2019-09-05T08:53:25Z",
            "modified_date": "2019-09-05T08:53:25Z",
            "is_public": True,
            "is_confidential": False,
            "is_metadata_record": False,
            "license": {"value": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "tags": ["binder"],
            "categories": [],
            "references": [],
            "has_linked_file": bool(article.link_only),
            "citation": f"Binder Examples (2019). {article.title}. figshare. Dataset.",
            "is_embargoed": False,
            "embargo_date": None,
            "id": article.id,
            "title": article.title,
            "doi": f"10.6084/m9.figshare.{article.id}.v{version}",
            "handle": "",
            "url": f"{base}/v2/articles/{article.id}",
            "published_date": "2019-09-05T08:53:25Z",
            "thumb": "",
            "defined_type": 3,
            "defined_type_name": "dataset",
            "group_id": None,
            "url_public_api": f"{base}/v2/articles/{article.id}",
            "url_public_html": f"{base}/articles/dataset/{slug}/{article.id}",
            "timeline": {"posted": "2019-09-05T08:53:25", "firstOnline": "2019-09-05T08:53:25"},
            "resource_title": None,
            "resource_doi": None,
        }

    def _app(self) -> web.Application:
        def not_found() -> web.Response:
            return web.json_response({"message": "Entity not found: article", "code": "EntityNotFound"}, status=404)

        async def article(request: web.Request) -> web.Response:
            article_id = int(request.match_info["id"])
            if article_id in self.fail:
                return web.json_response({"message": "Internal server error", "code": "InternalServerError"}, status=self.fail[article_id])
            found = self.articles.get(article_id)
            if found is None:
                return not_found()
            version = int(request.match_info.get("version") or max(found.versions))
            if version not in found.versions:
                return not_found()
            return web.json_response(self.article_json(found, version, base_url_of(request)))

        async def landing(request: web.Request) -> web.Response:
            return html_page("figshare article")

        async def download(request: web.Request) -> web.Response:
            data = self._files.get(int(request.match_info["file"]))
            if data is None:
                return web.Response(status=404, text="Not Found")
            return web.Response(body=data, content_type="application/octet-stream")

        app = web.Application()
        app.router.add_get("/v2/articles/{id:\\d+}", article)
        app.router.add_get("/v2/articles/{id:\\d+}/versions/{version:\\d+}", article)
        app.router.add_get("/articles/{rest:.+}", landing)
        app.router.add_get("/ndownloader/files/{file:\\d+}", download)
        return app
