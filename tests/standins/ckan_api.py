"""A stand-in for a CKAN site (e.g. https://demo.ckan.org), on 127.0.0.1.

The internet is unreachable here, so this server answers CKAN's Action API the
way CKAN 2.10 does (field names from recorded answers), optionally under a path
prefix as many installations live (https://data.example.org/catalog):

- GET <prefix>/api/3/action/package_show?id=<name or id>
      -> {"help": …, "success": true, "result": {id, name, title, metadata_modified,
          num_resources, private, state, type, resources: [{id, name, format, url,
          url_type, size, mimetype, package_id, position, …}], …}};
         404 {"help": …, "success": false, "error": {"message": "Not found",
         "__type": "Not Found Error"}}
- GET <prefix>/api/3/action/activity_data_show?id=<activity id>&object_type=package
      -> the dataset as it was at that activity (the activity plugin)
- GET <prefix>/dataset/<name>                          -> the landing page (HTML)
- GET <prefix>/dataset/<id>/resource/<rid>/download/<file> -> an uploaded resource's bytes

Resources may also link to other sites (url_type ""), as CKAN allows.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field

from aiohttp import web

from .dataserver import StandIn, base_url_of, html_page

__all__ = ["CKANStandIn", "CKANDataset"]


@dataclass
class CKANDataset:
    name: str
    files: dict[str, bytes]
    external: dict[str, str] = field(default_factory=dict)
    metadata_modified: str = "2023-05-10T12:34:56.123456"
    title: str = "Sample dataset"
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # activity id -> {file name -> bytes} as the dataset was then
    activities: dict[str, dict[str, bytes]] = field(default_factory=dict)


class CKANStandIn(StandIn):
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix.rstrip("/")
        self.datasets: dict[str, CKANDataset] = {}
        self.fail_status: int | None = None
        super().__init__()

    @property
    def url(self) -> str:
        return self.server.url + self.prefix

    def add(self, dataset: CKANDataset) -> CKANDataset:
        self.datasets[dataset.name] = dataset
        return dataset

    def _find(self, key: str) -> CKANDataset | None:
        return self.datasets.get(key) or next((d for d in self.datasets.values() if d.id == key), None)

    def package_json(self, dataset: CKANDataset, base: str, files: dict[str, bytes] | None = None) -> dict:
        files = dataset.files if files is None else files
        resources = []
        for position, (name, data) in enumerate(sorted(files.items())):
            rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{dataset.id}/{name}"))
            resources.append({
                "cache_last_updated": None, "cache_url": None, "created": "2023-05-10T12:30:00.000000",
                "datastore_active": False, "description": "", "format": name.rsplit(".", 1)[-1].upper(),
                "hash": "", "id": rid, "last_modified": "2023-05-10T12:30:00.000000",
                "metadata_modified": dataset.metadata_modified, "mimetype": None, "mimetype_inner": None,
                "name": name, "package_id": dataset.id, "position": position, "resource_type": None,
                "size": len(data), "state": "active",
                "url": f"{base}/dataset/{dataset.id}/resource/{rid}/download/{name}", "url_type": "upload",
            })
        for name, url in dataset.external.items():
            resources.append({"id": str(uuid.uuid4()), "name": name, "format": "HTML", "package_id": dataset.id, "position": len(resources), "size": None, "state": "active", "url": url, "url_type": ""})
        return {
            "author": "Binder Examples", "author_email": None, "creator_user_id": str(uuid.uuid4()),
            "id": dataset.id, "isopen": True, "license_id": "cc-by", "license_title": "Creative Commons Attribution",
            "maintainer": None, "maintainer_email": None, "metadata_created": "2023-05-10T12:30:00.000000",
            "metadata_modified": dataset.metadata_modified, "name": dataset.name, "notes": "A notebook and its requirements.",
            "num_resources": len(resources), "num_tags": 0, "organization": None, "owner_org": None, "private": False,
            "state": "active", "title": dataset.title, "type": "dataset", "url": "", "version": None,
            "extras": [], "resources": resources, "tags": [], "groups": [],
            "relationships_as_object": [], "relationships_as_subject": [],
        }

    def _app(self) -> web.Application:
        def base_of(request: web.Request) -> str:
            return base_url_of(request) + self.prefix

        def answer(request: web.Request, action: str, result: dict | None, status: int = 200) -> web.Response:
            body: dict = {"help": f"{base_of(request)}/api/3/action/help_show?name={action}"}
            if result is None:
                body.update(success=False, error={"message": "Not found", "__type": "Not Found Error"})
                return web.json_response(body, status=404)
            body.update(success=True, result=result)
            return web.json_response(body, status=status)

        async def package_show(request: web.Request) -> web.Response:
            if self.fail_status:
                return web.Response(status=self.fail_status, text="Internal Server Error")
            dataset = self._find(request.query.get("id", ""))
            return answer(request, "package_show", self.package_json(dataset, base_of(request)) if dataset else None)

        async def activity_data_show(request: web.Request) -> web.Response:
            activity = request.query.get("id", "")
            for dataset in self.datasets.values():
                if activity in dataset.activities:
                    then = copy.deepcopy(dataset.activities[activity])
                    return answer(request, "activity_data_show", self.package_json(dataset, base_of(request), then))
            return answer(request, "activity_data_show", None)

        async def landing(request: web.Request) -> web.Response:
            return html_page("CKAN dataset")

        async def download(request: web.Request) -> web.Response:
            dataset = self._find(request.match_info["id"])
            name = request.match_info["file"]
            data = None
            if dataset is not None:
                data = dataset.files.get(name)
                for files in dataset.activities.values():
                    data = data if data is not None else files.get(name)
            if data is None:
                return web.Response(status=404, text="Resource not found")
            return web.Response(body=data, content_type="application/octet-stream")

        app = web.Application()
        p = self.prefix
        app.router.add_get(f"{p}/api/3/action/package_show", package_show)
        app.router.add_get(f"{p}/api/3/action/activity_data_show", activity_data_show)
        app.router.add_get(p + "/dataset/{id}/resource/{rid}/download/{file}", download)
        app.router.add_get(p + "/dataset/{rest:.+}", landing)
        return app
