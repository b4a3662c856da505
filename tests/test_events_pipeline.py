"""The event tools on a real launch: gateway, resolver, builder and launcher as separate
processes over the test nats-server, a repository served by `git daemon`, a real
JupyterLab server. What the tools read back is what the client saw."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import nats
import pytest

from schemas import PHASES, Subjects, decode_event
from services.events.launches import EventFilter
from services.events.tools import export_mybinder, launch_stats, replay_launch, replay_range

from .harness import GitServer, Pipeline, launch, spec_for

LAUNCH_SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "mybinder-launch-v5.schema.json").read_text())


@pytest.mark.slow
async def test_a_real_launch_replays_as_the_client_saw_it_and_exports_and_counts(pipeline: Pipeline, git_server: GitServer) -> None:
    # The log's clock and this one are the same machine's; a second of slack covers rounding.
    started = datetime.now(timezone.utc) - timedelta(seconds=1)
    name = f"events-{uuid.uuid4().hex[:8]}"
    url = git_server.create(name, {"requirements.txt": "tabulate\n"})
    result = await launch(pipeline.gateway_url, "git", spec_for(url, "main"))
    assert result.last["phase"] == "ready", result.events[-3:]
    token = result.last["token"]
    assert token

    nc = await nats.connect(pipeline.nats_url)
    try:
        subjects = Subjects(pipeline.prefix)
        found: list[str] = []
        await replay_range(nc, subjects, started, None, found.append, event_filter=EventFilter(repo=name, phases=frozenset({"requested"})), as_json=True)
        [launch_id] = [decode_event(line).launch_id for line in found]

        for as_json in (True, False):
            lines: list[str] = []
            await replay_launch(nc, subjects, launch_id, lines.append, as_json=as_json)
            assert not any(token in line for line in lines)
        json_lines: list[str] = []
        await replay_launch(nc, subjects, launch_id, json_lines.append, as_json=True)
        events = [decode_event(line) for line in json_lines]
        assert [e.phase for e in events if e.phase in PHASES] == result.phases
        assert [e.message for e in events if e.phase == "building"] == result.messages("building")
        assert events[0].phase == "requested" and "resolved" in [e.phase for e in events]

        records = [json.loads(line) for line in await export_mybinder(nc, subjects, started, None)]
        [record] = [r for r in records if r["spec"] == spec_for(url, "main")]
        jsonschema.validate(record, LAUNCH_SCHEMA)
        assert (record["provider"], record["status"], record["ref"]) == ("Git", "success", git_server.head(name))
        assert record["origin"] == f"127.0.0.1:{pipeline.gateway_port}"

        [stats] = await launch_stats(nc, subjects, started, None, repo_url=url)
        assert (stats.launches, stats.launches_by_status) == (1, {"success": 1})
        assert stats.seconds_to_ready is not None and 0 < stats.seconds_to_ready.max_seconds < result.seconds + 1
    finally:
        await nc.close()
