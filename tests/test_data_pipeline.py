"""Data repositories end to end: a Zenodo record launched through the real pipeline
(gateway, resolver, builder and launcher as separate processes over a real
nats-server), built from the wheel index on 127.0.0.1 and served by JupyterLab.

The internet is unreachable here, so doi.org and Zenodo are stand-ins from
tests/standins/ on 127.0.0.1, configured with BINDERFLOW_PROVIDERS_* variables.
One pipeline serves the whole module.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from .harness import Pipeline, launch
from .standins.dataserver import make_zip
from .standins.doi_resolver import DoiResolverStandIn
from .standins.zenodo_api import ZenodoRecord, ZenodoStandIn

# Runs binderflow's services (and JupyterLab) as processes: not in `make test-fast`.
pytestmark = pytest.mark.slow

RECORD, CONCEPT, MISSING = 3242074, 3242073, 404404
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


class DataServices:
    def __init__(self) -> None:
        self.doi = DoiResolverStandIn().start()
        self.zenodo = ZenodoStandIn().start()
        # What the GitHub-Zenodo integration archives: one zip with the repository in one folder.
        archive = make_zip({
            "binder-examples-requirements-1a2b3c4/requirements.txt": "tabulate\n",
            "binder-examples-requirements-1a2b3c4/analysis.ipynb": NOTEBOOK,
        })
        self.zenodo.add(ZenodoRecord(RECORD, {"binder-examples/requirements-v1.0.zip": archive}, concept=CONCEPT))
        self.doi.register(f"10.5281/zenodo.{RECORD}", f"{self.zenodo.url}/records/{RECORD}")
        self.doi.register(f"10.5281/zenodo.{CONCEPT}", f"{self.zenodo.url}/doi/10.5281/zenodo.{CONCEPT}")
        self.doi.register(f"10.5281/zenodo.{MISSING}", f"{self.zenodo.url}/records/{MISSING}")

    def stop(self) -> None:
        self.doi.stop()
        self.zenodo.stop()


@pytest.fixture(scope="module")
def data_services() -> Iterator[DataServices]:
    services = DataServices()
    try:
        yield services
    finally:
        services.stop()


@pytest.fixture(scope="module")
def data_pipeline(
    nats_url: str, package_index: str, shared_uv_cache: Path, tmp_path_factory: pytest.TempPathFactory, data_services: DataServices
) -> Iterator[Pipeline]:
    """The four services, each its own process, pointed at the stand-ins."""
    tmp = tmp_path_factory.mktemp("data-pipeline")
    (tmp / "data").mkdir()
    (tmp / "logs").mkdir()
    env = {
        "BINDERFLOW_PROVIDERS_ZENODO_URL": data_services.zenodo.url,
        "BINDERFLOW_PROVIDERS_DOI_RESOLVER_URL": data_services.doi.url,
    }
    p = Pipeline(nats_url, f"t{uuid.uuid4().hex[:10]}", tmp / "data", package_index, tmp / "logs", extra_env=env, uv_cache=shared_uv_cache)
    p.start_all()
    try:
        p.wait_healthy()
        yield p
    finally:
        p.stop()
        print(p.logs()[-20000:])


def _contents(ready: dict[str, object]) -> list[str]:
    with urllib.request.urlopen(f"{ready['url']}api/contents?token={ready['token']}", timeout=10) as resp:
        return sorted(item["name"] for item in json.load(resp)["content"])


async def test_zenodo_record_reaches_ready_with_its_notebook(data_pipeline: Pipeline) -> None:
    spec = f"10.5281/zenodo.{RECORD}"
    result = await launch(data_pipeline.gateway_url, "zenodo", spec)
    assert result.last["phase"] == "ready", result.events[-5:]
    assert {"waiting", "fetching", "building", "built", "launching"} <= set(result.phases)
    ready = result.last
    assert _contents(ready) == ["analysis.ipynb", "requirements.txt"]
    assert ready["repo_url"] == spec
    assert ready["binder_request"] == f"v2/zenodo/{spec}"
    assert ready["binder_persistent_request"] == f"v2/zenodo/{spec}"
    assert ready["binder_ref_url"].endswith(f"/10.5281/zenodo.{RECORD}")
    log = result.messages("building")
    assert any(line.strip().startswith("Extracting binder-examples/requirements-v1.0.zip") for line in log)
    installed = {line.strip()[2:].split("==")[0] for line in log if line.strip().startswith("+ ")}
    assert "tabulate" in installed

    # The record id pins the content: launching again finds the environment built.
    again = await launch(data_pipeline.gateway_url, "zenodo", spec)
    assert again.phases == ["built", "launching", "ready"]


async def test_doi_launch_resolves_through_the_doi_resolver_to_zenodo(data_pipeline: Pipeline) -> None:
    # The concept DOI (all versions) lands on the latest version.
    result = await launch(data_pipeline.gateway_url, "doi", f"10.5281/zenodo.{CONCEPT}")
    assert result.last["phase"] == "ready", result.events[-5:]
    ready = result.last
    assert ready["binder_request"] == f"v2/doi/10.5281/zenodo.{CONCEPT}"
    assert ready["binder_persistent_request"] == f"v2/doi/10.5281/zenodo.{RECORD}"
    assert "analysis.ipynb" in _contents(ready)


async def test_missing_record_fails_once_with_a_clear_message(data_pipeline: Pipeline) -> None:
    result = await launch(data_pipeline.gateway_url, "zenodo", f"10.5281/zenodo.{MISSING}")
    assert result.phases == ["failed"]
    assert result.last["message"].startswith(f"Zenodo record {MISSING} does not exist (Zenodo answered 404 Not Found"), result.last
