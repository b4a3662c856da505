"""The builder's data-repository fetchers: downloading a record's files, unpacking a
single archive safely, limits, timeouts and errors, against stand-ins of Zenodo,
Figshare, HydroShare, Dataverse and CKAN.

The internet is unreachable here, so tests/standins/ serves each API and its
files on 127.0.0.1.
"""

from __future__ import annotations

# The executors package first: content modules import BuildError from it.
from services.builder.executors.base import BuildError  # isort: skip

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Iterator

import pytest
from aiohttp import web

from schemas import ResolvedRepo
from services.builder.content.ckan import CKANFetcher
from services.builder.content.datafiles import DataFetcher, Limits, extract_zip, safe_relative_path
from services.builder.content.dataverse import DataverseFetcher
from services.builder.content.figshare import FigshareFetcher
from services.builder.content.hydroshare import HydroshareFetcher
from services.builder.content.zenodo import ZenodoFetcher
from services.runtime.gitcmd import GitPolicy
from services.runtime.hosts import Site

from .standins.ckan_api import CKANDataset, CKANStandIn
from .standins.dataserver import StandinServer, make_zip
from .standins.dataverse_api import DataverseDataset, DataverseFile, DataverseStandIn
from .standins.figshare_api import FigshareArticle, FigshareStandIn
from .standins.hydroshare_api import HydroshareResource, HydroshareStandIn
from .standins.zenodo_api import ZenodoRecord, ZenodoStandIn

PRIVATE = ("0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7", "fe80::/10")
# Redirects to storage elsewhere pass the Git URL checks; in tests storage is on 127.0.0.1.
LOCAL_OK = GitPolicy(blocked_networks=PRIVATE, allowed_hosts=("127.0.0.1",))
BLOCKING = GitPolicy(blocked_networks=PRIVATE)
LIMITS = Limits(http_timeout_seconds=5.0, fetch_timeout_seconds=60.0)
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
REPO_ZIP = make_zip(
    {"requirements-1.0/": b"", "requirements-1.0/requirements.txt": "tabulate\n", "requirements-1.0/index.ipynb": NOTEBOOK,
     "requirements-1.0/binder/postBuild": "#!/bin/sh\necho hi\n"},
    executable=("requirements-1.0/binder/postBuild",),
)


class Storage:
    """Object storage elsewhere, which downloads may be redirected to."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

        async def serve(request: web.Request) -> web.Response:
            data = self.files.get(request.match_info["name"])
            return web.Response(body=data) if data is not None else web.Response(status=404)

        app = web.Application()
        app.router.add_get("/bucket/{name}", serve)
        self.server = StandinServer(app).start()


class Services:
    def __init__(self) -> None:
        self.zenodo = ZenodoStandIn().start()
        self.figshare = FigshareStandIn().start()
        self.hydroshare = HydroshareStandIn().start()
        self.dataverse = DataverseStandIn().start()
        self.ckan = CKANStandIn().start()
        self.storage = Storage()

    def stop(self) -> None:
        for s in (self.zenodo, self.figshare, self.hydroshare, self.dataverse, self.ckan):
            s.stop()
        self.storage.server.stop()


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    s = Services()
    try:
        yield s
    finally:
        s.stop()


def _repo(clone_url: str, provider: str, ref: str = "1", repo_url: str = "10.5281/zenodo.1") -> ResolvedRepo:
    return ResolvedRepo(
        repo_url=repo_url, ref=ref, resolved_ref="a" * 40, ref_url=repo_url, clone_url=clone_url,
        image_name="env-test", binder_request=f"v2/{provider}/x", binder_persistent_request=f"v2/{provider}/x",
        content_provider=provider,
    )


async def _fetch(fetcher: DataFetcher, repo: ResolvedRepo, workdir: Path) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    return [line async for line in fetcher.fetch(repo, workdir)]


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _zenodo(services: Services, policy: GitPolicy = LOCAL_OK, limits: Limits = LIMITS) -> ZenodoFetcher:
    return ZenodoFetcher([Site(services.zenodo.url)], policy, limits)


def _zenodo_repo(services: Services, record_id: int) -> ResolvedRepo:
    return _repo(f"{services.zenodo.url}/api/records/{record_id}", "zenodo", str(record_id))


# -- names and archives (pure) --------------------------------------------------------


def test_safe_relative_path_keeps_names_inside_their_folder() -> None:
    assert safe_relative_path("data/x.csv") == PurePosixPath("data/x.csv")
    assert safe_relative_path("./a//b/") == PurePosixPath("a/b")
    assert safe_relative_path("win\\dir\\f.txt") == PurePosixPath("win/dir/f.txt")
    for bad, why in (("../x", "outside"), ("a/../../x", "outside"), ("..\\x", "outside"), ("/etc/passwd", "absolute"),
                     ("C:/x", "absolute"), ("c:x", "absolute"), ("", "empty"), (".", "empty"), ("a\x00b", "invalid")):
        with pytest.raises(BuildError, match=why):
            safe_relative_path(bad)


@pytest.mark.parametrize(
    "files, symlinks, message",
    [
        ({"repo/ok.txt": "ok", "../evil.txt": "pwned"}, {}, r"leads outside its folder \('\.\./evil\.txt'\)"),
        ({"repo/a/../../../evil.txt": "pwned"}, {}, r"leads outside its folder"),
        ({"/tmp/evil.txt": "pwned"}, {}, r"absolute path \('/tmp/evil\.txt'\)"),
        ({"..\\evil.txt": "pwned"}, {}, r"leads outside its folder"),
        ({"repo/ok.txt": "ok"}, {"repo/passwd": "/etc/passwd"}, r"symbolic link \('repo/passwd'\)"),
        ({"repo/ok.txt": "ok"}, {"repo/up": "../../.."}, r"symbolic link"),
    ],
)
def test_extract_zip_refuses_the_whole_archive_for_one_unsafe_member(tmp_path: Path, files: dict, symlinks: dict, message: str) -> None:
    archive = tmp_path / "a.zip"
    archive.write_bytes(make_zip(files, symlinks=symlinks))
    dest = tmp_path / "box" / "out"
    with pytest.raises(BuildError, match=message):
        extract_zip(archive, dest, LIMITS)
    assert not dest.exists()
    assert _tree(tmp_path) == {"a.zip"}


def test_extract_zip_counts_what_it_writes(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    archive.write_bytes(make_zip({"zeros.bin": b"\0" * 200_000}))
    assert archive.stat().st_size < 5_000
    with pytest.raises(BuildError, match=r"unpacks to 200\.0 kB, more than this Binder unpacks \(100\.0 kB\)"):
        extract_zip(archive, tmp_path / "out", Limits(max_bytes=100_000))
    many = tmp_path / "many.zip"
    many.write_bytes(make_zip({f"f{i}": "" for i in range(11)}))
    with pytest.raises(BuildError, match=r"holds 11 entries, more than this Binder unpacks \(10\)"):
        extract_zip(many, tmp_path / "out2", Limits(max_files=10))
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(BuildError, match=r"not a readable zip archive"):
        extract_zip(broken, tmp_path / "out3", LIMITS)


# -- zenodo ---------------------------------------------------------------------------


async def test_single_zip_is_unpacked_and_its_top_folder_flattened(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1001, {"binder-examples/requirements-v1.0.zip": REPO_ZIP}))
    log = await _fetch(_zenodo(services), _zenodo_repo(services, 1001), tmp_path / "repo")
    assert _tree(tmp_path / "repo") == {"requirements.txt", "index.ipynb", "binder", "binder/postBuild"}
    assert (tmp_path / "repo" / "requirements.txt").read_text() == "tabulate\n"
    assert os.stat(tmp_path / "repo" / "binder" / "postBuild").st_mode & stat.S_IXUSR
    assert log[0].startswith("Zenodo record 1001 (10.5281/zenodo.1): 1 file")
    assert any(line.startswith("Extracting binder-examples/requirements-v1.0.zip") for line in log)
    assert log[-1] == "Unpacked 3 files: binder, index.ipynb, requirements.txt"


async def test_archive_without_a_single_top_folder_is_placed_as_it_is(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1002, {"code.zip": make_zip({"requirements.txt": "tabulate\n", "src/a.py": "", "README.md": ""})}))
    await _fetch(_zenodo(services), _zenodo_repo(services, 1002), tmp_path / "repo")
    assert _tree(tmp_path / "repo") == {"requirements.txt", "src", "src/a.py", "README.md"}


async def test_several_files_are_placed_as_they_are_and_archives_among_them_kept(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1003, {"requirements.txt": b"tabulate\n", "data.zip": REPO_ZIP, "notebooks/a.ipynb": NOTEBOOK.encode()}, resource_type="dataset"))
    log = await _fetch(_zenodo(services), _zenodo_repo(services, 1003), tmp_path / "repo")
    assert _tree(tmp_path / "repo") == {"requirements.txt", "data.zip", "notebooks", "notebooks/a.ipynb"}
    assert (tmp_path / "repo" / "data.zip").read_bytes() == REPO_ZIP
    assert log[-1].startswith("Fetched 3 files")


async def test_a_name_used_as_file_and_folder_is_an_error(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1013, {"data": b"a file", "data/x.csv": b"x\n"}))
    with pytest.raises(BuildError, match=r"Zenodo record 1013 lists data both as a file and as a folder"):
        await _fetch(_zenodo(services), _zenodo_repo(services, 1013), tmp_path / "repo")


async def test_a_zip_slip_archive_from_a_record_is_refused(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1004, {"evil.zip": make_zip({"repo/requirements.txt": "tabulate\n", "repo/../../../escaped.txt": "pwned"})}))
    with pytest.raises(BuildError, match=r"The archive evil\.zip contains a path that leads outside its folder"):
        await _fetch(_zenodo(services), _zenodo_repo(services, 1004), tmp_path / "build" / "repo")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert _tree(tmp_path / "build" / "repo") == set()


async def test_a_file_name_leading_outside_is_refused_before_any_download(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1005, {"a.txt": b"a", "b.txt": b"b"}, listed_names={"b.txt": "../../escaped.txt"}))
    before = len(services.zenodo.server.requests)
    with pytest.raises(BuildError, match=r"Zenodo record 1005 contains a path that leads outside its folder \('\.\./\.\./escaped\.txt'\)"):
        await _fetch(_zenodo(services), _zenodo_repo(services, 1005), tmp_path / "build" / "repo")
    assert services.zenodo.server.requests[before:] == ["/api/records/1005"]
    assert not list(tmp_path.rglob("*.txt"))


async def test_downloads_may_be_redirected_to_storage_that_passes_the_network_checks(services: Services, tmp_path: Path) -> None:
    services.storage.files["big.csv"] = b"x,y\n1,2\n"
    services.zenodo.add(ZenodoRecord(1006, {"big.csv": b"x,y\n1,2\n", "requirements.txt": b"tabulate\n"}))
    services.zenodo.redirect_files["big.csv"] = f"{services.storage.server.url}/bucket/big.csv"
    await _fetch(_zenodo(services), _zenodo_repo(services, 1006), tmp_path / "ok")
    assert (tmp_path / "ok" / "big.csv").read_bytes() == b"x,y\n1,2\n"
    with pytest.raises(BuildError, match=r"Zenodo redirected the download of big\.csv to http://127\.0\.0\.1:\d+/bucket/big\.csv, which is refused"):
        await _fetch(_zenodo(services, BLOCKING), _zenodo_repo(services, 1006), tmp_path / "blocked")


async def test_a_damaged_download_is_caught_by_its_checksum(services: Services, tmp_path: Path) -> None:
    services.storage.files["damaged.csv"] = b"not what zenodo listed"
    services.zenodo.add(ZenodoRecord(1007, {"damaged.csv": b"x,y\n1,2\n"}))
    services.zenodo.redirect_files["damaged.csv"] = f"{services.storage.server.url}/bucket/damaged.csv"
    with pytest.raises(BuildError, match=r"The download of damaged\.csv is damaged \(its MD5 checksum differs"):
        await _fetch(_zenodo(services), _zenodo_repo(services, 1007), tmp_path / "repo")


async def test_record_errors_are_reported(services: Services, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"Zenodo record 424242 is no longer available: Zenodo answered 404 Not Found"):
        await _fetch(_zenodo(services), _zenodo_repo(services, 424242), tmp_path / "a")
    services.zenodo.fail[1008] = 500
    with pytest.raises(BuildError, match=r"Zenodo had a problem serving Zenodo record 1008 \(500 Internal Server Error.*try again later"):
        await _fetch(_zenodo(services), _zenodo_repo(services, 1008), tmp_path / "b")


async def test_timeouts_stop_the_fetch(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1009, {"requirements.txt": b"tabulate\n"}))
    services.zenodo.delay[1009] = 2.0
    quick = Limits(http_timeout_seconds=0.3, fetch_timeout_seconds=60)
    with pytest.raises(BuildError, match=r"Zenodo stopped answering while fetching Zenodo record 1009 \(nothing for 0\.3 s\)"):
        await _fetch(_zenodo(services, limits=quick), _zenodo_repo(services, 1009), tmp_path / "a")
    services.zenodo.add(ZenodoRecord(1010, {"slow.bin": b"0123456789"}))
    services.zenodo.slow_files["slow.bin"] = 1.0
    with pytest.raises(BuildError, match=r"stopped answering while fetching slow\.bin"):
        await _fetch(_zenodo(services, limits=quick), _zenodo_repo(services, 1010), tmp_path / "b")
    overall = Limits(http_timeout_seconds=5, fetch_timeout_seconds=0.5)
    with pytest.raises(BuildError, match=r"Fetching from Zenodo took longer than 0\.5 s and was stopped"):
        await _fetch(_zenodo(services, limits=overall), _zenodo_repo(services, 1010), tmp_path / "c")


async def test_size_limits(services: Services, tmp_path: Path) -> None:
    services.zenodo.add(ZenodoRecord(1011, {"a.bin": b"a" * 600, "b.bin": b"b" * 600}))
    small = Limits(max_bytes=1000, http_timeout_seconds=5, fetch_timeout_seconds=60)
    with pytest.raises(BuildError, match=r"Zenodo record 1011 holds 1\.2 kB, more than this Binder downloads \(1\.0 kB\)"):
        await _fetch(_zenodo(services, limits=small), _zenodo_repo(services, 1011), tmp_path / "a")
    services.zenodo.add(ZenodoRecord(1012, {"zeros.zip": make_zip({"zeros.bin": b"\0" * 50_000})}))
    with pytest.raises(BuildError, match=r"unpacks to 50\.0 kB, more than this Binder unpacks"):
        await _fetch(_zenodo(services, limits=Limits(max_bytes=20_000)), _zenodo_repo(services, 1012), tmp_path / "b")


async def test_hosts_not_configured_are_refused_without_a_request(services: Services, tmp_path: Path) -> None:
    other = ZenodoFetcher([Site("https://zenodo.org")], LOCAL_OK, LIMITS)
    before = len(services.zenodo.server.requests)
    with pytest.raises(BuildError, match=r"Refusing to fetch Zenodo record 1 from http://127\.0\.0\.1:\d+/api/records/1: that host is not one"):
        await _fetch(other, _zenodo_repo(services, 1), tmp_path / "a")
    assert len(services.zenodo.server.requests) == before


# -- figshare -------------------------------------------------------------------------


async def test_figshare_article_leaves_out_link_only_files(services: Services, tmp_path: Path) -> None:
    services.figshare.add(FigshareArticle(9782777, {1: {"binder.zip": REPO_ZIP}}, link_only={"Project page": "https://example.org/project"}))
    fetcher = FigshareFetcher([Site(services.figshare.api_url), Site(services.figshare.url, subdomains=True)], LOCAL_OK, LIMITS)
    repo = _repo(f"{services.figshare.api_url}/articles/9782777/versions/1", "figshare", "9782777.v1", "10.6084/m9.figshare.9782777.v1")
    log = await _fetch(fetcher, repo, tmp_path / "repo")
    assert _tree(tmp_path / "repo") == {"requirements.txt", "index.ipynb", "binder", "binder/postBuild"}
    assert log[0] == "Figshare article 9782777.v1 (10.6084/m9.figshare.9782777.v1): 1 file"


# -- dataverse ------------------------------------------------------------------------


async def test_dataverse_version_keeps_folders_and_originals_and_leaves_out_restricted_files(services: Services, tmp_path: Path) -> None:
    dataset = services.dataverse.add(DataverseDataset(7001, "10.7910", "DVN/ABCDEF", [
        DataverseFile("requirements.txt", b"tabulate\n", directory="binder"),
        DataverseFile("table.tab", b"x\ty\n1\t2\n", directory="data", original_name="table.csv", original=b"x,y\n1,2\n"),
        DataverseFile("secret.txt", b"s", restricted=True),
        DataverseFile("analysis.ipynb", NOTEBOOK.encode()),
    ], version=(2, 1)))
    fetcher = DataverseFetcher([Site(services.dataverse.url)], LOCAL_OK, LIMITS)
    repo = _repo(f"{services.dataverse.url}/api/datasets/{dataset.id}/versions/2.1", "dataverse", "7001.v2.1", "10.7910/DVN/ABCDEF")
    log = await _fetch(fetcher, repo, tmp_path / "repo")
    assert _tree(tmp_path / "repo") == {"binder", "binder/requirements.txt", "data", "data/table.csv", "analysis.ipynb"}
    assert (tmp_path / "repo" / "data" / "table.csv").read_bytes() == b"x,y\n1,2\n"
    assert "Leaving out secret.txt: the file is restricted and cannot be downloaded without an account" in log
    gone = _repo(f"{services.dataverse.url}/api/datasets/{dataset.id}/versions/1.0", "dataverse", "7001.v1.0")
    with pytest.raises(BuildError, match=r"no longer available: Dataverse answered 404 Not Found"):
        await _fetch(fetcher, gone, tmp_path / "gone")


# -- hydroshare -----------------------------------------------------------------------


async def test_hydroshare_waits_for_the_bag_and_keeps_only_the_contents(services: Services, tmp_path: Path) -> None:
    rid = "c" * 32
    services.hydroshare.add(HydroshareResource(rid, {"requirements.txt": b"tabulate\n", "nb/a.ipynb": NOTEBOOK.encode()}))
    services.hydroshare.preparing[rid] = 2
    fetcher = HydroshareFetcher([Site(services.hydroshare.url)], LOCAL_OK, LIMITS, poll_seconds=0.05, wait_seconds=5)
    repo = _repo(f"{services.hydroshare.url}/django_irods/download/bags/{rid}", "hydroshare", f"{rid}.v1568739919")
    log = await _fetch(fetcher, repo, tmp_path / "repo")
    assert _tree(tmp_path / "repo") == {"requirements.txt", "nb", "nb/a.ipynb"}
    assert log.count("HydroShare is preparing the bag; asking again in 0.05 s") == 2
    services.hydroshare.preparing[rid] = 100
    impatient = HydroshareFetcher([Site(services.hydroshare.url)], LOCAL_OK, LIMITS, poll_seconds=0.05, wait_seconds=0.1)
    with pytest.raises(BuildError, match=r"HydroShare took longer than 0\.1 s to prepare the bag"):
        await _fetch(impatient, repo, tmp_path / "late")


async def test_hydroshare_bag_with_a_traversal_is_refused(services: Services, tmp_path: Path) -> None:
    rid = "d" * 32
    services.hydroshare.add(HydroshareResource(rid, {"ok.txt": b"ok"}, extra_members={f"{rid}/data/contents/../../../../escaped.txt": b"pwned"}))
    fetcher = HydroshareFetcher([Site(services.hydroshare.url)], LOCAL_OK, LIMITS, poll_seconds=0.05, wait_seconds=1)
    repo = _repo(f"{services.hydroshare.url}/django_irods/download/bags/{rid}", "hydroshare", f"{rid}.v1")
    with pytest.raises(BuildError, match=r"leads outside its folder"):
        await _fetch(fetcher, repo, tmp_path / "build" / "repo")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert _tree(tmp_path / "build" / "repo") == set()


# -- ckan -----------------------------------------------------------------------------


async def test_ckan_downloads_its_own_resources_and_leaves_out_links_elsewhere(services: Services, tmp_path: Path) -> None:
    dataset = services.ckan.add(CKANDataset("ckan-demo", {"requirements.txt": b"tabulate\n", "data.csv": b"x\n1\n"},
                                            external={"Project site": "https://example.org/project.html"},
                                            activities={"act-9": {"old.csv": b"old\n"}}))
    fetcher = CKANFetcher([Site(services.ckan.url)], LOCAL_OK, LIMITS)
    repo = _repo(f"{services.ckan.url}/api/3/action/package_show?id={dataset.id}", "ckan", "ckan-demo.v1683722096")
    log = await _fetch(fetcher, repo, tmp_path / "repo")
    assert _tree(tmp_path / "repo") == {"requirements.txt", "data.csv"}
    assert "Leaving out project.html: it links to example.org, outside this CKAN" in log
    then = _repo(f"{services.ckan.url}/api/3/action/activity_data_show?id=act-9&object_type=package", "ckan", "ckan-demo.aact-9")
    await _fetch(fetcher, then, tmp_path / "then")
    assert _tree(tmp_path / "then") == {"old.csv"}
