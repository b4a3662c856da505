"""The data-repository providers (zenodo, figshare, hydroshare, dataverse, ckan, doi):
pure parsing rules, then resolution against stand-ins of doi.org and each service.

The internet is unreachable here, so tests/standins/ serves each API on
127.0.0.1 with the real services' status codes, redirects and JSON shapes.
"""

from __future__ import annotations

import re
from typing import Iterator

import msgspec
import pytest

from schemas import ResolvedRepo
from services.resolver.domain import pin
from services.resolver.providers import make_providers
from services.resolver.providers.base import ProviderDirectory, ProviderError, RepoProvider, ResolvedSource
from services.resolver.providers.ckan import CKANProvider, parse_dataset_path
from services.resolver.providers.datahttp import content_ref, epoch_of, normalize_doi
from services.resolver.providers.dataverse import DataverseProvider, persistent_id_of
from services.resolver.providers.doi import DoiProvider
from services.resolver.providers.figshare import FigshareProvider, parse_article_url
from services.resolver.providers.hydroshare import HydroshareProvider
from services.resolver.providers.zenodo import ZenodoProvider
from services.runtime.hosts import Site
from services.runtime.settings import ProviderSettings, Settings, load_settings

from .harness import free_port
from .standins.ckan_api import CKANDataset, CKANStandIn
from .standins.dataserver import make_zip
from .standins.dataverse_api import DataverseDataset, DataverseFile, DataverseStandIn
from .standins.doi_resolver import DoiResolverStandIn
from .standins.figshare_api import FigshareArticle, FigshareStandIn
from .standins.hydroshare_api import HydroshareResource, HydroshareStandIn
from .standins.zenodo_api import ZenodoRecord, ZenodoStandIn

SHA_RE = re.compile(r"^[0-9a-f]{40}\Z")
ZIP = make_zip({"repo-1.0/requirements.txt": "tabulate\n", "repo-1.0/index.ipynb": "{}"})
HS_ID = "b8f6eae9d89241cf8b5904033460af61"


# -- pure rules ---------------------------------------------------------------


def test_normalize_doi_accepts_the_usual_spellings() -> None:
    for text in ("10.5281/zenodo.3242074", "doi:10.5281/zenodo.3242074", "DOI:10.5281/zenodo.3242074",
                 "https://doi.org/10.5281/zenodo.3242074", "http://dx.doi.org/10.5281/zenodo.3242074",
                 " 10.5281/zenodo.3242074/ ", "10.5281%2Fzenodo.3242074"):
        assert normalize_doi(text) == "10.5281/zenodo.3242074", text
    assert normalize_doi("http://127.0.0.1:9/10.1234/x", "http://127.0.0.1:9") == "10.1234/x"
    for text in ("", "zenodo.3242074", "10.5281", "10.5281/", "11.5281/zenodo.1", "10.12/x", "10.5281/a b", "https://example.org/10.5281/x"):
        assert normalize_doi(text) is None, text


def test_site_matches_host_port_prefix_and_optionally_subdomains() -> None:
    site = Site("https://zenodo.org")
    assert site.owns("https://zenodo.org/records/1") and site.owns("https://ZENODO.org:443/x")
    assert not site.owns("https://zenodo.org:8443/x")
    assert site.owns("http://zenodo.org/records/1") and not site.owns("http://zenodo.org:8080/records/1")
    assert not site.owns("https://evil.zenodo.org/x")
    assert not site.owns("https://zenodo.org.evil.com/x")
    assert not site.owns("https://user:pw@zenodo.org/x")
    assert not site.owns("ftp://zenodo.org/x")
    figshare = Site("https://figshare.com", subdomains=True)
    assert figshare.owns("https://ndownloader.figshare.com/files/1")
    assert not figshare.owns("https://figshare.com.evil.org/files/1")
    assert not Site("http://127.0.0.1:8000", subdomains=True).owns("http://1.127.0.0.1:8000/")
    ckan = Site("https://data.example.org/catalog/")
    assert ckan.path_of("https://data.example.org/catalog/dataset/x?y=1") == "/dataset/x"
    assert ckan.path_of("https://data.example.org/catalogue/dataset/x") is None
    assert ckan.url("/api/3/action/") == "https://data.example.org/catalog/api/3/action/"


def test_content_ref_looks_like_a_commit_and_names_one_version() -> None:
    ref = content_ref("zenodo", "https://zenodo.org", "3242074")
    assert SHA_RE.match(ref)
    assert ref == content_ref("zenodo", "https://zenodo.org", "3242074")
    assert ref != content_ref("zenodo", "https://sandbox.zenodo.org", "3242074")
    assert ref != content_ref("figshare", "https://zenodo.org", "3242074")


def test_figshare_article_urls() -> None:
    assert parse_article_url("/articles/dataset/Binder-ready_openSenseMap_Analysis/9782777/1") == ("9782777", "1")
    assert parse_article_url("/articles/binder-examples_requirements/9784088") == ("9784088", None)
    assert parse_article_url("/account/articles/9784088") == ("9784088", None)
    assert parse_article_url("/articles/dataset/title") is None
    assert parse_article_url("/collections/x/123") is None


def test_dataverse_persistent_ids() -> None:
    assert persistent_id_of("/citation", "persistentId=doi:10.7910/DVN/TJCLKP") == "doi:10.7910/DVN/TJCLKP"
    assert persistent_id_of("/dataset.xhtml", "persistentId=doi%3A10.7910%2FDVN%2FTJCLKP&version=1.0") == "doi:10.7910/DVN/TJCLKP"
    assert persistent_id_of("/file.xhtml", "persistentId=doi:10.7910/DVN/6ZXAGT/3YRRYJ") == "doi:10.7910/DVN/6ZXAGT"
    assert persistent_id_of("/dataverse/harvard", "persistentId=doi:10.7910/DVN/TJCLKP") is None
    assert persistent_id_of("/citation", "") is None


def test_ckan_dataset_paths() -> None:
    assert parse_dataset_path("/dataset/sample-dataset-1", "") == ("sample-dataset-1", None)
    assert parse_dataset_path("/dataset/sample-dataset-1/", "") == ("sample-dataset-1", None)
    assert parse_dataset_path("/dataset/sample-dataset-1/history/1a2b-3c", "") == ("sample-dataset-1", "1a2b-3c")
    assert parse_dataset_path("/dataset/sample-dataset-1", "activity_id=77") == ("sample-dataset-1", "77")
    assert parse_dataset_path("/group/x", "") is None
    assert parse_dataset_path("/dataset/..%2F..%2Fetc", "") is None
    assert parse_dataset_path("/dataset", "") is None


def test_hydroshare_specs() -> None:
    provider = HydroshareProvider(ProviderSettings())
    assert provider.parse_spec(HS_ID) == HS_ID
    assert provider.parse_spec(f"https://www.hydroshare.org/resource/{HS_ID}/") == HS_ID
    assert provider.parse_spec(f"https%3A%2F%2Fwww.hydroshare.org%2Fresource%2F{HS_ID}") == HS_ID
    with pytest.raises(ProviderError, match="not on this Binder's HydroShare"):
        provider.parse_spec(f"https://evil.example/resource/{HS_ID}")
    for bad in ("nope", HS_ID[:-1], HS_ID + "0", "x" + HS_ID):
        with pytest.raises(ProviderError, match="32 hexadecimal digits"):
            provider.parse_spec(bad)


def test_epoch_of_reads_times_with_and_without_zone() -> None:
    assert epoch_of("2019-09-17T17:05:19.592617Z") == 1568739919
    assert epoch_of("2019-09-17T17:05:19.592617") == 1568739919
    assert epoch_of("2019-09-17T19:05:19+02:00") == 1568739919
    with pytest.raises(ValueError):
        epoch_of("yesterday")


def test_make_providers_registers_the_data_providers_that_are_enabled() -> None:
    settings = load_settings(environ={})
    providers = make_providers(settings)
    assert {"zenodo", "figshare", "hydroshare", "dataverse", "ckan", "doi"} <= set(providers)
    assert all(providers[p].name == p for p in ("zenodo", "figshare", "hydroshare", "dataverse", "ckan", "doi"))
    only = load_settings(environ={"BINDERFLOW_PROVIDERS_ENABLED": "git,zenodo"})
    assert set(make_providers(only)) == {"git", "zenodo"}


# -- stand-ins -------------------------------------------------------------------


class Services:
    def __init__(self) -> None:
        self.doi = DoiResolverStandIn().start()
        self.zenodo = ZenodoStandIn().start()
        self.figshare = FigshareStandIn().start()
        self.hydroshare = HydroshareStandIn().start()
        self.dataverse = DataverseStandIn().start()
        self.other_dataverse = DataverseStandIn().start()
        self.ckan = CKANStandIn(prefix="/catalog").start()
        self.settings = ProviderSettings(
            zenodo_url=self.zenodo.url,
            figshare_url=self.figshare.url,
            figshare_api_url=self.figshare.api_url,
            hydroshare_url=self.hydroshare.url,
            dataverse_urls=[self.dataverse.url],
            ckan_urls=[self.ckan.url],
            doi_resolver_url=self.doi.url,
            github_url="https://github.example",
            gitlab_url="https://gitlab.example",
            http_timeout_seconds=5.0,
        )

    def stop(self) -> None:
        for s in (self.doi, self.zenodo, self.figshare, self.hydroshare, self.dataverse, self.other_dataverse, self.ckan):
            s.stop()


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    s = Services()
    z = s.zenodo
    z.add(ZenodoRecord(3242074, {"requirements-v1.0.zip": ZIP}, concept=3242073))
    z.add(ZenodoRecord(3242080, {"requirements-v1.1.zip": ZIP}, concept=3242073))
    z.add(ZenodoRecord(5000001, {}, title="metadata only"))
    z.add(ZenodoRecord(5000002, {"a.txt": b"a"}, deleted=True))
    z.fail[5000003] = 503
    z.delay[5000004] = 3.0
    z.add(ZenodoRecord(5000005, {f"data/part-{i:05}.csv": b"x\n" for i in range(3000)}, resource_type="dataset"))
    for number in (3242074, 3242073, 3242080, 999999, 5000001, 5000002, 5000003, 5000004, 5000005):
        s.doi.register(f"10.5281/zenodo.{number}", f"{z.url}/doi/10.5281/zenodo.{number}" if number == 3242073 else f"{z.url}/records/{number}")
    f = s.figshare
    f.add(FigshareArticle(9782777, {1: {"binder.zip": ZIP}, 2: {"binder.zip": ZIP, "extra.csv": b"x\n"}}))
    s.doi.register("10.6084/m9.figshare.9782777.v1", f.landing(9782777, 1))
    s.doi.register("10.6084/m9.figshare.9782777", f.landing(9782777))
    s.doi.register("10.6084/m9.figshare.1111", f.landing(1111))
    s.hydroshare.add(HydroshareResource(HS_ID, {"requirements.txt": b"tabulate\n"}))
    s.hydroshare.add(HydroshareResource("0" * 32, {"a.txt": b"a"}, public=False))
    s.doi.register(f"10.4211/hs.{HS_ID}", f"{s.hydroshare.url}/resource/{HS_ID}")
    dv = s.dataverse.add(DataverseDataset(3035124, "10.7910", "DVN/TJCLKP", [DataverseFile("requirements.txt", b"tabulate\n", directory="binder")], version=(3, 0)))
    s.doi.register("10.7910/DVN/TJCLKP", s.dataverse.landing(dv))
    s.doi.register("10.7910/DVN/TJCLKP/3YRRYJ", f"{s.dataverse.url}/file.xhtml?persistentId=doi:10.7910/DVN/TJCLKP/3YRRYJ")
    s.doi.register("10.7910/DVN/MISSING", f"{s.dataverse.url}/citation?persistentId=doi:10.7910/DVN/MISSING")
    elsewhere = s.other_dataverse.add(DataverseDataset(42, "10.9999", "DVN/ELSEWHERE", [DataverseFile("a.txt", b"a")]))
    s.doi.register("10.9999/DVN/ELSEWHERE", s.other_dataverse.landing(elsewhere))
    ck = s.ckan.add(CKANDataset("sample-dataset-1", {"requirements.txt": b"tabulate\n"}, activities={"act-1": {"old.txt": b"old\n"}}))
    s.doi.register("10.1234/ckan.sample", f"{s.ckan.url}/dataset/{ck.name}")
    s.doi.register("10.1234/github.repo", "https://github.example/binder-examples/requirements/tree/main")
    s.doi.register("10.1234/gitlab.repo", "https://gitlab.example/group/sub/project")
    s.doi.register("10.1234/elsewhere", "http://127.0.0.1:9/somewhere/else")
    try:
        yield s
    finally:
        s.stop()


def _on_the_wire(source: ResolvedSource, provider: str, spec: str) -> ResolvedRepo:
    """What the resolver sends the builder, checked by the schema as a decoder would."""
    repo = pin(provider, spec, source)
    return msgspec.json.decode(msgspec.json.encode(repo), type=ResolvedRepo)


# -- zenodo -----------------------------------------------------------------------


async def test_zenodo_version_doi_pins_the_record(services: Services) -> None:
    source = await ZenodoProvider(services.settings).resolve("10.5281/zenodo.3242074")
    assert source.content_provider == "zenodo"
    assert source.repo_url == "10.5281/zenodo.3242074"
    assert source.ref == "3242074"
    assert SHA_RE.match(source.resolved_ref)
    assert source.clone_url == f"{services.zenodo.url}/api/records/3242074"
    assert source.persistent_spec == "10.5281/zenodo.3242074"
    assert source.ref_url == f"{services.doi.url}/10.5281/zenodo.3242074"
    repo = _on_the_wire(source, "zenodo", "10.5281/zenodo.3242074")
    assert repo.binder_persistent_request == "v2/zenodo/10.5281/zenodo.3242074"
    again = await ZenodoProvider(services.settings).resolve("https://doi.org/10.5281/zenodo.3242074")
    assert again.resolved_ref == source.resolved_ref


async def test_zenodo_record_with_a_large_answer(services: Services) -> None:
    source = await ZenodoProvider(services.settings).resolve("10.5281/zenodo.5000005")
    assert source.ref == "5000005"


async def test_zenodo_concept_doi_resolves_to_the_latest_version(services: Services) -> None:
    source = await ZenodoProvider(services.settings).resolve("doi:10.5281/zenodo.3242073")
    assert source.ref == "3242080"
    assert source.persistent_spec == "10.5281/zenodo.3242080"
    assert source.clone_url.endswith("/api/records/3242080")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("zenodo.3242074", r"not a DOI.*zenodo/10\.5281/zenodo\.3242074"),
        ("10.5281/zenodo.1", r"DOI 10\.5281/zenodo\.1 is not registered"),
        ("10.5281/zenodo.999999", r"Zenodo record 999999 does not exist \(Zenodo answered 404 Not Found"),
        ("10.5281/zenodo.5000001", r"has no files that can be downloaded"),
        ("10.5281/zenodo.5000002", r"Zenodo record 5000002 was deleted \(Zenodo answered 410 Gone"),
        ("10.5281/zenodo.5000003", r"Zenodo had a problem .*503 Service Unavailable.*try again later"),
    ],
)
async def test_zenodo_failures_say_what_went_wrong(services: Services, spec: str, message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        await ZenodoProvider(services.settings).resolve(spec)


async def test_zenodo_timeout_is_reported(services: Services) -> None:
    quick = msgspec.structs.replace(services.settings, http_timeout_seconds=0.5)
    with pytest.raises(ProviderError, match=r"Zenodo did not answer within 0\.5 s.*try again later"):
        await ZenodoProvider(quick).resolve("10.5281/zenodo.5000004")


async def test_zenodo_unreachable_is_reported(services: Services) -> None:
    port = free_port()
    services.doi.register("10.5281/zenodo.7", f"http://127.0.0.1:{port}/records/7")
    closed = msgspec.structs.replace(services.settings, zenodo_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderError, match=rf"Could not reach Zenodo at http://127\.0\.0\.1:{port}/api/records/7"):
        await ZenodoProvider(closed).resolve("10.5281/zenodo.7")


async def test_zenodo_refuses_a_doi_leading_elsewhere_without_asking_there(services: Services) -> None:
    before = len(services.figshare.server.requests)
    with pytest.raises(ProviderError, match=r"leads to .*/articles/.*not a Zenodo record.*doi/10\.6084"):
        await ZenodoProvider(services.settings).resolve("10.6084/m9.figshare.9782777.v1")
    assert len(services.figshare.server.requests) == before


# -- figshare ---------------------------------------------------------------------


async def test_figshare_versioned_doi(services: Services) -> None:
    source = await FigshareProvider(services.settings).resolve("10.6084/m9.figshare.9782777.v1")
    assert (source.ref, source.content_provider) == ("9782777.v1", "figshare")
    assert source.clone_url == f"{services.figshare.api_url}/articles/9782777/versions/1"
    assert source.persistent_spec == "10.6084/m9.figshare.9782777.v1"
    _on_the_wire(source, "figshare", "10.6084/m9.figshare.9782777.v1")


async def test_figshare_doi_without_version_takes_the_current_one(services: Services) -> None:
    source = await FigshareProvider(services.settings).resolve("10.6084/m9.figshare.9782777")
    assert source.ref == "9782777.v2"
    assert source.persistent_spec == "10.6084/m9.figshare.9782777.v2"
    assert source.clone_url.endswith("/articles/9782777/versions/2")


async def test_figshare_missing_article(services: Services) -> None:
    with pytest.raises(ProviderError, match=r"Figshare article 1111 does not exist \(Figshare answered 404"):
        await FigshareProvider(services.settings).resolve("10.6084/m9.figshare.1111")


# -- hydroshare -------------------------------------------------------------------


async def test_hydroshare_resource_is_versioned_by_its_modification_time(services: Services) -> None:
    source = await HydroshareProvider(services.settings).resolve(HS_ID)
    assert source.ref == f"{HS_ID}.v1568739919"
    assert source.repo_url == source.ref_url == f"{services.hydroshare.url}/resource/{HS_ID}"
    assert source.clone_url == f"{services.hydroshare.url}/django_irods/download/bags/{HS_ID}"
    assert (source.persistent_spec, source.content_provider) == (HS_ID, "hydroshare")
    _on_the_wire(source, "hydroshare", HS_ID)
    by_url = await HydroshareProvider(services.settings).resolve(f"{services.hydroshare.url}/resource/{HS_ID}")
    assert by_url.resolved_ref == source.resolved_ref


async def test_hydroshare_missing_and_private_resources(services: Services) -> None:
    with pytest.raises(ProviderError, match=r"HydroShare resource 1{32} does not exist"):
        await HydroshareProvider(services.settings).resolve("1" * 32)
    with pytest.raises(ProviderError, match=r"HydroShare resource 0{32} is not public"):
        await HydroshareProvider(services.settings).resolve("0" * 32)


# -- dataverse --------------------------------------------------------------------


async def test_dataverse_doi_pins_the_latest_published_version(services: Services) -> None:
    source = await DataverseProvider(services.settings).resolve("10.7910/DVN/TJCLKP")
    assert (source.ref, source.content_provider) == ("3035124.v3.0", "dataverse")
    assert source.clone_url == f"{services.dataverse.url}/api/datasets/3035124/versions/3.0"
    assert source.persistent_spec == "10.7910/DVN/TJCLKP"
    assert source.ref_url == "https://doi.org/10.7910/DVN/TJCLKP"
    _on_the_wire(source, "dataverse", "10.7910/DVN/TJCLKP")


async def test_dataverse_file_doi_launches_its_dataset(services: Services) -> None:
    source = await DataverseProvider(services.settings).resolve("10.7910/DVN/TJCLKP/3YRRYJ")
    assert source.ref == "3035124.v3.0"


async def test_dataverse_installations_not_configured_are_refused(services: Services) -> None:
    with pytest.raises(ProviderError, match=r"not a Dataverse record"):
        await DataverseProvider(services.settings).resolve("10.9999/DVN/ELSEWHERE")
    assert services.other_dataverse.server.requests == []


async def test_dataverse_missing_dataset(services: Services) -> None:
    with pytest.raises(ProviderError, match=r"Dataverse dataset doi:10\.7910/DVN/MISSING does not exist"):
        await DataverseProvider(services.settings).resolve("10.7910/DVN/MISSING")


# -- ckan -------------------------------------------------------------------------


def _ckan_spec(url: str) -> str:
    from urllib.parse import quote

    return quote(url, safe="")


async def test_ckan_dataset_under_a_path_prefix(services: Services) -> None:
    dataset = services.ckan.datasets["sample-dataset-1"]
    url = f"{services.ckan.url}/dataset/sample-dataset-1"
    source = await CKANProvider(services.settings).resolve(_ckan_spec(url))
    assert source.ref == "sample-dataset-1.v1683722096"
    assert source.clone_url == f"{services.ckan.url}/api/3/action/package_show?id={dataset.id}"
    assert (source.repo_url, source.ref_url, source.content_provider) == (url, url, "ckan")
    assert source.persistent_spec == _ckan_spec(url)
    _on_the_wire(source, "ckan", _ckan_spec(url))


async def test_ckan_activity_pins_the_dataset_as_it_was(services: Services) -> None:
    for url in (f"{services.ckan.url}/dataset/sample-dataset-1/history/act-1", f"{services.ckan.url}/dataset/sample-dataset-1?activity_id=act-1"):
        source = await CKANProvider(services.settings).resolve(_ckan_spec(url))
        assert source.ref == "sample-dataset-1.aact-1"
        assert source.clone_url == f"{services.ckan.url}/api/3/action/activity_data_show?id=act-1&object_type=package"
    with pytest.raises(ProviderError, match=r"as of activity nope does not exist"):
        await CKANProvider(services.settings).resolve(_ckan_spec(f"{services.ckan.url}/dataset/sample-dataset-1/history/nope"))


async def test_ckan_failures(services: Services) -> None:
    provider = CKANProvider(services.settings)
    with pytest.raises(ProviderError, match=r"not a CKAN dataset URL: the ckan provider expects a url-escaped"):
        await provider.resolve("sample-dataset-1")
    with pytest.raises(ProviderError, match=r"not on a CKAN this Binder serves"):
        await provider.resolve(_ckan_spec("https://demo.ckan.org/dataset/sample-dataset-1"))
    with pytest.raises(ProviderError, match=r"not a CKAN dataset URL \(expected …/dataset/<name>\)"):
        await provider.resolve(_ckan_spec(f"{services.ckan.url}/group/science"))
    with pytest.raises(ProviderError, match=r"CKAN dataset nope does not exist \(CKAN at .* answered 404"):
        await provider.resolve(_ckan_spec(f"{services.ckan.url}/dataset/nope"))
    services.ckan.fail_status = 502
    try:
        with pytest.raises(ProviderError, match=r"had a problem .*502 Bad Gateway"):
            await provider.resolve(_ckan_spec(f"{services.ckan.url}/dataset/sample-dataset-1"))
    finally:
        services.ckan.fail_status = None


# -- doi --------------------------------------------------------------------------


class RecordingProvider:
    """A Git provider that records the spec it was asked to resolve and pins it to one commit."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.specs: list[str] = []

    @classmethod
    def from_settings(cls, settings: Settings, directory: ProviderDirectory) -> "RecordingProvider":
        return cls("gh")

    async def aclose(self) -> None:
        return None

    async def resolve(self, spec: str) -> ResolvedSource:
        self.specs.append(spec)
        return ResolvedSource(
            repo_url="https://github.example/binder-examples/requirements", ref="main", resolved_ref="a" * 40,
            ref_url="https://github.example/binder-examples/requirements/tree/" + "a" * 40,
            clone_url="https://github.example/binder-examples/requirements", persistent_spec="binder-examples/requirements/" + "a" * 40,
        )


@pytest.mark.parametrize(
    "doi, provider, ref, persistent",
    [
        ("10.5281/zenodo.3242073", "zenodo", "3242080", "10.5281/zenodo.3242080"),
        ("10.6084/m9.figshare.9782777.v1", "figshare", "9782777.v1", "10.6084/m9.figshare.9782777.v1"),
        (f"10.4211/hs.{HS_ID}", "hydroshare", f"{HS_ID}.v1568739919", f"10.4211/hs.{HS_ID}"),
        ("10.7910/DVN/TJCLKP", "dataverse", "3035124.v3.0", "10.7910/DVN/TJCLKP"),
        ("10.1234/ckan.sample", "ckan", "sample-dataset-1.v1683722096", "10.1234/ckan.sample"),
    ],
)
async def test_doi_picks_the_provider_its_landing_page_belongs_to(services: Services, doi: str, provider: str, ref: str, persistent: str) -> None:
    source = await DoiProvider(services.settings).resolve(doi)
    assert (source.content_provider, source.ref, source.persistent_spec) == (provider, ref, persistent)
    repo = _on_the_wire(source, "doi", doi)
    assert repo.binder_persistent_request == f"v2/doi/{persistent}"


@pytest.mark.parametrize(
    "provider, spec, doi",
    [
        ("zenodo", "10.5281/zenodo.3242080", "10.5281/zenodo.3242073"),
        ("figshare", "10.6084/m9.figshare.9782777.v1", "10.6084/m9.figshare.9782777.v1"),
        ("hydroshare", HS_ID, f"10.4211/hs.{HS_ID}"),
        ("dataverse", "10.7910/DVN/TJCLKP", "10.7910/DVN/TJCLKP"),
        ("ckan", "<ckan>", "10.1234/ckan.sample"),
    ],
)
async def test_doi_and_direct_links_to_one_record_share_an_environment(services: Services, provider: str, spec: str, doi: str) -> None:
    if spec == "<ckan>":
        spec = _ckan_spec(f"{services.ckan.url}/dataset/sample-dataset-1")
    providers = make_providers(load_settings(environ={}, overrides={"providers": msgspec.to_builtins(services.settings)}))
    direct = _on_the_wire(await providers[provider].resolve(spec), provider, spec)
    via_doi = _on_the_wire(await providers["doi"].resolve(doi), "doi", doi)
    assert via_doi.image_name == direct.image_name
    assert via_doi.binder_request == f"v2/doi/{doi}" and direct.binder_request == f"v2/{provider}/{spec}"


async def test_doi_leading_to_a_git_host_uses_that_hosts_provider(services: Services) -> None:
    gh, gl, git = RecordingProvider("gh"), RecordingProvider("gl"), RecordingProvider("git")
    providers: dict[str, RepoProvider] = {"gh": gh, "gl": gl, "git": git}
    source = await DoiProvider(services.settings, lambda: providers).resolve("10.1234/github.repo")
    assert gh.specs == ["binder-examples/requirements/main"]
    assert source.content_provider == "git" and source.persistent_spec == "10.1234/github.repo"
    await DoiProvider(services.settings, lambda: providers).resolve("10.1234/gitlab.repo")
    assert gl.specs == ["group%2Fsub%2Fproject/HEAD"]
    without_gh = msgspec.structs.replace(services.settings, enabled=["git", "doi"])
    await DoiProvider(without_gh, lambda: providers).resolve("10.1234/github.repo")
    assert git.specs == ["https%3A%2F%2Fgithub.example%2Fbinder-examples%2Frequirements/main"]


async def test_doi_leading_anywhere_else_is_refused_without_fetching_it(services: Services) -> None:
    with pytest.raises(ProviderError, match=r"leads to http://127\.0\.0\.1:9/somewhere/else, which is not on a repository this Binder serves"):
        await DoiProvider(services.settings).resolve("10.1234/elsewhere")
    zenodo_off = msgspec.structs.replace(services.settings, enabled=["doi", "figshare"])
    with pytest.raises(ProviderError, match=r"not on a repository this Binder serves \(data repositories: Figshare"):
        await DoiProvider(zenodo_off).resolve("10.5281/zenodo.3242074")
    with pytest.raises(ProviderError, match=r"not a DOI"):
        await DoiProvider(services.settings).resolve("https://zenodo.org/records/1")
