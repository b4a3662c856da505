"""A stand-in for Zenodo (https://zenodo.org), on 127.0.0.1.

The internet is unreachable here, so this server answers the parts of Zenodo
the `zenodo` provider and fetcher use, in the shapes Zenodo's InvenioRDM REST
API answers them (field names from recorded answers of /api/records/<id>):

- GET /records/<id>                          -> the record's landing page (HTML)
- GET /doi/<doi>                             -> 302 to /records/<id>; a concept DOI
                                                (all versions) to the latest version
- GET /api/records/<id>                      -> the record: id, recid, conceptrecid, doi,
                                                conceptdoi, metadata.resource_type, files
                                                [{id, key, size, checksum "md5:…", links.self}], …
                                                404 {"status": 404, "message": "The persistent
                                                identifier does not exist."}; 410 when deleted
- GET /api/records/<id>/files/<key>/content  -> the file's bytes

Knobs: `fail` (record id -> status to answer its API with, e.g. 503),
`delay` (record id -> seconds before answering its API), `slow_files`
(file key -> seconds before sending the body), `redirect_files` (file key ->
URL the content request redirects to, as Zenodo does to its storage).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from .dataserver import StandIn, base_url_of, html_page, md5_of

__all__ = ["ZenodoStandIn", "ZenodoRecord"]


@dataclass
class ZenodoRecord:
    id: int
    files: dict[str, bytes]
    title: str = "binder-examples/requirements: v1.0"
    resource_type: str = "software"
    concept: int | None = None
    deleted: bool = False
    # Names the API lists that differ from where the content is served (traversal tests).
    listed_names: dict[str, str] = field(default_factory=dict)


class ZenodoStandIn(StandIn):
    def __init__(self) -> None:
        self.records: dict[int, ZenodoRecord] = {}
        self.fail: dict[int, int] = {}
        self.delay: dict[int, float] = {}
        self.slow_files: dict[str, float] = {}
        self.redirect_files: dict[str, str] = {}
        super().__init__()

    def add(self, record: ZenodoRecord) -> ZenodoRecord:
        self.records[record.id] = record
        return record

    def latest_of(self, concept: int) -> ZenodoRecord | None:
        versions = [r for r in self.records.values() if r.concept == concept and not r.deleted]
        return max(versions, key=lambda r: r.id) if versions else None

    def record_json(self, record: ZenodoRecord, base: str) -> dict:
        concept = record.concept or record.id - 1
        files = []
        for key, data in record.files.items():
            files.append({
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{record.id}/{key}")),
                "key": record.listed_names.get(key, key),
                "size": len(data),
                "checksum": f"md5:{md5_of(data)}",
                "links": {"self": f"{base}/api/records/{record.id}/files/{key}/content"},
            })
        return {
            "created": "2019-06-11T13:20:31.215745+00:00",
            "modified": "2019-06-11T15:01:02.776315+00:00",
            "updated": "2019-06-11T15:01:02.776315+00:00",
            "id": record.id,
            "recid": str(record.id),
            "conceptrecid": str(concept),
            "doi": f"10.5281/zenodo.{record.id}",
            "conceptdoi": f"10.5281/zenodo.{concept}",
            "doi_url": f"https://doi.org/10.5281/zenodo.{record.id}",
            "metadata": {
                "title": record.title,
                "doi": f"10.5281/zenodo.{record.id}",
                "publication_date": "2019-06-11",
                "description": "<p>A Binder-ready repository archived by the GitHub-Zenodo integration.</p>",
                "access_right": "open",
                "creators": [{"name": "Binder Examples", "affiliation": None}],
                "resource_type": {"title": record.resource_type.title(), "type": record.resource_type},
                "license": {"id": "bsd-3-clause"},
                "relations": {"version": [{"index": 0, "is_last": True, "parent": {"pid_type": "recid", "pid_value": str(concept)}}]},
            },
            "title": record.title,
            "links": {
                "self": f"{base}/api/records/{record.id}",
                "self_html": f"{base}/records/{record.id}",
                "doi": f"https://doi.org/10.5281/zenodo.{record.id}",
                "files": f"{base}/api/records/{record.id}/files",
                "latest": f"{base}/api/records/{record.id}/versions/latest",
            },
            "files": files,
            "swh": {},
            "owners": [{"id": "12345"}],
            "status": "published",
            "state": "done",
            "submitted": True,
            "revision": 4,
            "stats": {"downloads": 112, "unique_downloads": 98, "views": 340, "unique_views": 301, "version_downloads": 112},
        }

    def _app(self) -> web.Application:
        def not_found() -> web.Response:
            return web.json_response({"status": 404, "message": "The persistent identifier does not exist."}, status=404)

        async def landing(request: web.Request) -> web.Response:
            record = self.records.get(int(request.match_info["id"]))
            if record is None:
                return html_page("Not found", status=404)
            return html_page(record.title)

        async def doi(request: web.Request) -> web.Response:
            match = re.match(r"^10\.5281/zenodo\.(\d+)\Z", request.match_info["doi"], re.IGNORECASE)
            if not match:
                return html_page("Not found", status=404)
            number = int(match.group(1))
            record = self.records.get(number) or self.latest_of(number)
            if record is None:
                return html_page("Not found", status=404)
            raise web.HTTPFound(f"/records/{record.id}")

        async def api_record(request: web.Request) -> web.Response:
            number = int(request.match_info["id"])
            if number in self.delay:
                await asyncio.sleep(self.delay[number])
            if number in self.fail:
                status = self.fail[number]
                return web.json_response({"status": status, "message": "Internal server error."}, status=status)
            record = self.records.get(number)
            if record is None:
                latest = self.latest_of(number)
                if latest is not None:
                    # A concept record id answers with its latest version.
                    raise web.HTTPFound(f"/api/records/{latest.id}")
                return not_found()
            if record.deleted:
                return web.json_response({"status": 410, "message": "The record has been deleted."}, status=410)
            return web.json_response(self.record_json(record, base_url_of(request)))

        async def content(request: web.Request) -> web.StreamResponse:
            record = self.records.get(int(request.match_info["id"]))
            key = request.match_info["key"]
            if record is None or key not in record.files:
                return not_found()
            if key in self.redirect_files:
                raise web.HTTPFound(self.redirect_files[key])
            data = record.files[key]
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
            await response.prepare(request)
            if key in self.slow_files:
                await response.write(data[:1])
                await asyncio.sleep(self.slow_files[key])
                await response.write(data[1:])
            else:
                await response.write(data)
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_get("/records/{id:\\d+}", landing)
        app.router.add_get("/record/{id:\\d+}", landing)
        app.router.add_get("/doi/{doi:.+}", doi)
        app.router.add_get("/api/records/{id:\\d+}", api_record)
        app.router.add_get("/api/records/{id:\\d+}/files/{key:.+}/content", content)
        return app
