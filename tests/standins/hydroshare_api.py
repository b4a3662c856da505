"""A stand-in for HydroShare (https://www.hydroshare.org), on 127.0.0.1.

The internet is unreachable here, so this server answers what the `hydroshare`
provider and fetcher use, as HydroShare does:

- GET /hsapi/resource/<id>/scimeta/elements  -> the science metadata: title, creators,
                                                dates [{type: created|modified|published,
                                                start_date, end_date}], …; 404
                                                {"detail": "No resource was found for resource id:<id>"};
                                                403 {"detail": "You do not have permission to perform
                                                this action."} for a private resource
- GET /resource/<id>                         -> the landing page (HTML)
- GET /django_irods/download/bags/<id>       -> the resource's BagIt zip (<id>/bagit.txt,
                                                <id>/manifest-md5.txt, <id>/data/resourcemap.xml,
                                                <id>/data/contents/…); while the bag is being
                                                prepared, a 200 HTML page instead of the zip

Knobs: `preparing` (resource id -> how many more bag requests answer "being prepared").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from .dataserver import StandIn, html_page, make_zip, md5_of

__all__ = ["HydroshareStandIn", "HydroshareResource"]


@dataclass
class HydroshareResource:
    id: str
    files: dict[str, bytes]
    modified: str = "2019-09-17T17:05:19.592617Z"
    title: str = "Binder-ready notebook"
    public: bool = True
    extra_members: dict[str, bytes] = field(default_factory=dict)


class HydroshareStandIn(StandIn):
    def __init__(self) -> None:
        self.resources: dict[str, HydroshareResource] = {}
        self.preparing: dict[str, int] = {}
        super().__init__()

    def add(self, resource: HydroshareResource) -> HydroshareResource:
        self.resources[resource.id] = resource
        return resource

    def bag(self, resource: HydroshareResource) -> bytes:
        rid = resource.id
        members: dict[str, bytes | str] = {
            f"{rid}/bagit.txt": "BagIt-Version: 0.96\nTag-File-Character-Encoding: UTF-8\n",
            f"{rid}/data/resourcemap.xml": "<rdf:RDF/>",
            f"{rid}/data/resourcemetadata.xml": f"<rdf:RDF><dc:title>{resource.title}</dc:title></rdf:RDF>",
        }
        for name, data in resource.files.items():
            members[f"{rid}/data/contents/{name}"] = data
        members[f"{rid}/manifest-md5.txt"] = "".join(f"{md5_of(d)}  data/contents/{n}\n" for n, d in resource.files.items())
        members.update(resource.extra_members)
        return make_zip(members)

    def _app(self) -> web.Application:
        async def scimeta(request: web.Request) -> web.Response:
            rid = request.match_info["id"]
            resource = self.resources.get(rid)
            if resource is None:
                return web.json_response({"detail": f"No resource was found for resource id:{rid}"}, status=404)
            if not resource.public:
                return web.json_response({"detail": "You do not have permission to perform this action."}, status=403)
            return web.json_response({
                "title": resource.title,
                "creators": [{"name": "Binder Examples", "description": "/user/1/", "organization": None, "email": None, "order": 1, "identifiers": {}}],
                "contributors": [],
                "coverages": [],
                "dates": [
                    {"type": "created", "start_date": "2019-09-17T16:49:08.453296Z", "end_date": None},
                    {"type": "modified", "start_date": resource.modified, "end_date": None},
                ],
                "description": "A notebook and its requirements.",
                "formats": [{"value": "application/x-ipynb+json"}],
                "funding_agencies": [],
                "identifiers": [{"name": "hydroShareIdentifier", "url": f"http://www.hydroshare.org/resource/{rid}"}],
                "language": "eng",
                "rights": {"statement": "This resource is shared under the Creative Commons Attribution CC BY.", "url": "http://creativecommons.org/licenses/by/4.0/"},
                "sources": [],
                "subjects": [{"value": "binder"}],
                "relations": [],
                "publisher": None,
            })

        async def landing(request: web.Request) -> web.Response:
            return html_page("HydroShare resource")

        async def bag(request: web.Request) -> web.Response:
            rid = request.match_info["id"].removesuffix(".zip")
            resource = self.resources.get(rid)
            if resource is None:
                return html_page("Not Found", status=404)
            if self.preparing.get(rid, 0) > 0:
                self.preparing[rid] -= 1
                return web.Response(text="<html><body>Bag creation is in progress; try again shortly.</body></html>", content_type="text/html")
            return web.Response(body=self.bag(resource), content_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{rid}.zip"'})

        app = web.Application()
        app.router.add_get("/hsapi/resource/{id}/scimeta/elements", scimeta)
        app.router.add_get("/hsapi/resource/{id}/scimeta/elements/", scimeta)
        app.router.add_get("/resource/{id}", landing)
        app.router.add_get("/resource/{id}/", landing)
        app.router.add_get("/django_irods/download/bags/{id}", bag)
        return app
