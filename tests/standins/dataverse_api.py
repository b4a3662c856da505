"""A stand-in for a Dataverse installation (e.g. https://dataverse.harvard.edu), on 127.0.0.1.

The internet is unreachable here, so this server answers the parts of the
Dataverse native API the `dataverse` provider and fetcher use, in Dataverse's
shapes (field names from recorded answers):

- GET /citation?persistentId=doi:…           -> 302 to /dataset.xhtml?persistentId=doi:…
- GET /dataset.xhtml?persistentId=doi:…      -> the landing page (HTML)
- GET /api/datasets/:persistentId/?persistentId=doi:…
                                             -> {"status": "OK", "data": {id, identifier,
                                                persistentUrl, protocol, authority, publisher,
                                                latestVersion: {versionNumber, versionMinorNumber,
                                                versionState, files: [{label, directoryLabel,
                                                restricted, dataFile: {id, filename, contentType,
                                                filesize, md5, checksum, originalFileName, …}}]}}};
                                                404 {"status": "ERROR", "message": "Dataset with
                                                Persistent ID doi:… not found."}
- GET /api/datasets/<id>/versions/<major.minor> -> {"status": "OK", "data": <that version>}
- GET /api/access/datafile/<file id>[?format=original]
                                             -> the file (the tab-separated preservation copy of
                                                an ingested table, or with format=original the
                                                uploaded original); 403 for a restricted file

Knobs: `redirect_files` (file id -> URL the download answers 303 See Other to,
as installations storing files on S3 do).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from aiohttp import web

from .dataserver import StandIn, html_page, md5_of

__all__ = ["DataverseStandIn", "DataverseDataset", "DataverseFile"]


@dataclass
class DataverseFile:
    label: str
    data: bytes
    directory: str = ""
    restricted: bool = False
    # For an ingested table: the name and bytes of what was uploaded.
    original_name: str = ""
    original: bytes = b""


@dataclass
class DataverseDataset:
    id: int
    authority: str
    identifier: str
    files: list[DataverseFile]
    version: tuple[int, int] = (1, 0)
    title: str = "Replication Data for: A notebook"

    @property
    def persistent_id(self) -> str:
        return f"doi:{self.authority}/{self.identifier}"


class DataverseStandIn(StandIn):
    def __init__(self) -> None:
        self.datasets: dict[int, DataverseDataset] = {}
        self.redirect_files: dict[int, str] = {}
        super().__init__()

    def add(self, dataset: DataverseDataset) -> DataverseDataset:
        self.datasets[dataset.id] = dataset
        return dataset

    def file_id(self, dataset: DataverseDataset, index: int) -> int:
        return dataset.id * 100 + index

    def landing(self, dataset: DataverseDataset) -> str:
        return f"{self.url}/citation?persistentId={dataset.persistent_id}"

    def _by_pid(self, pid: str) -> DataverseDataset | None:
        return next((d for d in self.datasets.values() if d.persistent_id.lower() == pid.lower()), None)

    def version_json(self, dataset: DataverseDataset) -> dict:
        files = []
        for index, f in enumerate(dataset.files):
            datafile = {
                "id": self.file_id(dataset, index),
                "persistentId": "",
                "pidURL": "",
                "filename": f.label,
                "contentType": "text/tab-separated-values" if f.original_name else "application/octet-stream",
                "filesize": len(f.data),
                "description": "",
                "storageIdentifier": f"s3://dvn-cloud:{index:012x}",
                "rootDataFileId": -1,
                "md5": md5_of(f.data),
                "checksum": {"type": "MD5", "value": md5_of(f.data)},
                "creationDate": "2019-10-01",
            }
            if f.original_name:
                datafile.update({"originalFileFormat": "text/csv", "originalFormatLabel": "Comma Separated Values", "originalFileSize": len(f.original), "originalFileName": f.original_name, "UNF": "UNF:6:abc=="})
            entry = {"label": f.label, "restricted": f.restricted, "version": 1, "datasetVersionId": dataset.id + 7, "dataFile": datafile}
            if f.directory:
                entry["directoryLabel"] = f.directory
            files.append(entry)
        major, minor = dataset.version
        return {
            "id": dataset.id + 7,
            "datasetId": dataset.id,
            "datasetPersistentId": dataset.persistent_id,
            "storageIdentifier": f"s3://{dataset.authority}/{dataset.identifier}",
            "versionNumber": major,
            "versionMinorNumber": minor,
            "versionState": "RELEASED",
            "lastUpdateTime": "2019-10-01T19:21:51Z",
            "releaseTime": "2019-10-01T19:21:51Z",
            "createTime": "2019-10-01T19:11:25Z",
            "license": {"name": "CC0 1.0", "uri": "http://creativecommons.org/publicdomain/zero/1.0"},
            "fileAccessRequest": False,
            "metadataBlocks": {"citation": {"displayName": "Citation Metadata", "name": "citation", "fields": [
                {"typeName": "title", "multiple": False, "typeClass": "primitive", "value": dataset.title}
            ]}},
            "files": files,
        }

    def _app(self) -> web.Application:
        def not_found(pid: str) -> web.Response:
            return web.json_response({"status": "ERROR", "message": f"Dataset with Persistent ID {pid} not found."}, status=404)

        async def citation(request: web.Request) -> web.Response:
            pid = request.query.get("persistentId", "")
            raise web.HTTPFound("/dataset.xhtml?" + urllib.parse.urlencode({"persistentId": pid}))

        async def landing(request: web.Request) -> web.Response:
            dataset = self._by_pid(request.query.get("persistentId", ""))
            return html_page(dataset.title) if dataset else html_page("Page Not Found", status=404)

        async def by_pid(request: web.Request) -> web.Response:
            pid = request.query.get("persistentId", "")
            dataset = self._by_pid(pid)
            if dataset is None:
                return not_found(pid)
            return web.json_response({"status": "OK", "data": {
                "id": dataset.id,
                "identifier": dataset.identifier,
                "persistentUrl": f"https://doi.org/{dataset.authority}/{dataset.identifier}",
                "protocol": "doi",
                "authority": dataset.authority,
                "publisher": "Stand-in Dataverse",
                "publicationDate": "2019-10-01",
                "storageIdentifier": f"s3://{dataset.authority}/{dataset.identifier}",
                "latestVersion": self.version_json(dataset),
            }})

        async def version(request: web.Request) -> web.Response:
            dataset = self.datasets.get(int(request.match_info["id"]))
            wanted = request.match_info["version"]
            if dataset is None or wanted != "{}.{}".format(*dataset.version):
                return web.json_response({"status": "ERROR", "message": f"Dataset version {wanted} of dataset {request.match_info['id']} not found"}, status=404)
            return web.json_response({"status": "OK", "data": self.version_json(dataset)})

        async def datafile(request: web.Request) -> web.Response:
            file_id = int(request.match_info["id"])
            dataset = self.datasets.get(file_id // 100)
            index = file_id % 100
            if dataset is None or index >= len(dataset.files):
                return web.json_response({"status": "ERROR", "message": f"File not found for given id."}, status=404)
            f = dataset.files[index]
            if f.restricted:
                return web.json_response({"status": "ERROR", "message": "Not authorized to access this object via this API endpoint."}, status=403)
            if file_id in self.redirect_files:
                raise web.HTTPSeeOther(self.redirect_files[file_id])
            if request.query.get("format") == "original" and f.original_name:
                return web.Response(body=f.original, content_type="text/csv", headers={"Content-Disposition": f'attachment; filename="{f.original_name}"'})
            return web.Response(body=f.data, content_type="application/octet-stream", headers={"Content-Disposition": f'attachment; filename="{f.label}"'})

        app = web.Application()
        app.router.add_get("/citation", citation)
        app.router.add_get("/dataset.xhtml", landing)
        app.router.add_get("/api/datasets/:persistentId", by_pid)
        app.router.add_get("/api/datasets/:persistentId/", by_pid)
        app.router.add_get("/api/datasets/{id:\\d+}/versions/{version}", version)
        app.router.add_get("/api/access/datafile/{id:\\d+}", datafile)
        return app
