"""The AsyncAPI document: generated from the types, committed up to date, valid AsyncAPI 3.0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from schemas import COMMAND_TYPES, FACT_KINDS, PHASES, SCHEMA_VERSION, Subjects, decode_event
from schemas.asyncapi import asyncapi_document

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "asyncapi.json"
ASYNCAPI_SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "asyncapi-3.0.0.schema.json").read_text())


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_committed_document_is_the_generated_one() -> None:
    generated = json.dumps(asyncapi_document(), indent=2) + "\n"
    assert COMMITTED.read_text() == generated, "docs/asyncapi.json is stale: run `binderflow events asyncapi -o docs/asyncapi.json`"


@pytest.mark.slow
def test_cli_prints_the_same_document() -> None:
    out = subprocess.run([sys.executable, "-m", "services", "events", "asyncapi"], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert json.loads(out) == asyncapi_document()


def test_document_is_valid_asyncapi_3() -> None:
    jsonschema.validate(asyncapi_document(), ASYNCAPI_SCHEMA)


def test_every_reference_resolves_and_every_operation_names_its_channels_messages() -> None:
    document = asyncapi_document()
    for ref in _refs(document):
        _resolve(document, ref)
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        for message in operation["messages"]:
            assert message["$ref"].startswith(channel + "/messages/"), name


def test_channels_cover_every_subject_with_the_subject_names_of_the_code() -> None:
    document = asyncapi_document()
    s = Subjects("binderflow")
    addresses = {ch["address"].replace("{prefix}", "binderflow") for ch in document["channels"].values()}
    assert addresses == {
        *(s.commands(c) for c in COMMAND_TYPES), s.launch_events("{launch_id}"),
        s.launch_log("{launch_id}"), s.repo_builds("{repo_key}"), s.heartbeat("{service}"),
    }
    for channel in document["channels"].values():
        parameters = {p.strip("{}") for p in channel["address"].split(".") if p.startswith("{")}
        assert parameters == set(channel["parameters"])


def test_every_phase_and_fact_has_a_message_with_its_payload_schema() -> None:
    document = asyncapi_document()
    launch_events = document["channels"]["launchEvents"]["messages"]
    tags = {}
    for ref in launch_events.values():
        message = _resolve(document, ref["$ref"])
        payload = _resolve(document, message["payload"]["$ref"])
        tags[payload["properties"]["phase"]["enum"][0]] = payload
        assert payload["properties"]["timestamp"]["format"] == "date-time"
        assert payload["properties"]["schema_version"]["default"] == SCHEMA_VERSION
    log_message = _resolve(document, document["channels"]["launchLog"]["messages"]["BuildLogged"]["$ref"])
    tags["building"] = _resolve(document, log_message["payload"]["$ref"])
    assert set(tags) == set(PHASES) | set(FACT_KINDS)
    assert document["info"]["x-schema-version"] == SCHEMA_VERSION


def test_stored_events_validate_against_their_payload_schemas() -> None:
    document = asyncapi_document()
    components = document["components"]["schemas"]
    for name in ("events_v1.jsonl", "events_v2.jsonl"):
        for line in (ROOT / "tests" / "fixtures" / name).read_text().splitlines():
            event = decode_event(line)
            schema = {**components[type(event).__name__], "components": {"schemas": components}}
            jsonschema.validate(msgspec.json.decode(line), schema)
