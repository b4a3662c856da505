#!/usr/bin/env python3
"""Count launches per repository from binderflow's event log, with a durable JetStream consumer.

A standalone example for analytics consumers: it needs only nats-py
(`pip install nats-py`), not binderflow. It reads every launch's events
(`<prefix>.launch.*.events`, never the bulky build log lines), counts each
`resolved` fact by repository, and keeps its counts in a state file.

The consumer is durable: the server remembers how far it got, so a restart
continues where the last run stopped. Counts are saved, with the stream
sequence they include, before the messages are acknowledged; a message
delivered again after a crash between the two is recognised by its sequence and
not counted twice.

    python docs/examples/analytics_consumer.py --nats nats://127.0.0.1:4222 \
        --state launch-counts.json [--prefix binderflow] [--exit-when-idle]

It prints the counts as JSON when it stops (Ctrl-C, or --exit-when-idle once it
has read everything there is).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import tempfile

import nats
from nats.errors import TimeoutError as FetchTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

# Launch facts (`resolved`) exist from schema version 2 on. Later versions only
# add fields, so an event of a newer version is read the same way.
FIRST_VERSION_WITH_FACTS = 2
FETCH_BATCH = 500


def load_state(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {"last_seq": 0, "counts": {}}


def save_state(path: str, state: dict) -> None:
    # Written to a temporary file and renamed: a crash never leaves half a file.
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False) as tmp:
        json.dump(state, tmp)
    os.replace(tmp.name, path)


def count(state: dict, seq: int, data: bytes) -> None:
    """Add one stored event to the counts (once per stream sequence)."""
    if seq <= state["last_seq"]:
        return  # delivered again after a crash: already counted
    state["last_seq"] = seq
    event = json.loads(data)
    if event.get("phase") != "resolved" or event.get("schema_version", 1) < FIRST_VERSION_WITH_FACTS:
        return
    repo = event["repo_url"]
    state["counts"][repo] = state["counts"].get(repo, 0) + 1


async def run(args: argparse.Namespace) -> dict:
    nc = await nats.connect(args.nats, name="analytics-consumer")
    js = nc.jetstream()
    stream = f"{args.prefix.upper()}_EVENTS"
    subscription = await js.pull_subscribe(
        f"{args.prefix}.launch.*.events",
        durable=args.durable,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            # A batch not acknowledged within this time is delivered again.
            ack_wait=60,
            max_ack_pending=10 * FETCH_BATCH,
        ),
    )
    state = load_state(args.state)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        while not stopping.is_set():
            try:
                messages = await subscription.fetch(FETCH_BATCH, timeout=2)
            except FetchTimeout:
                if args.exit_when_idle:
                    break
                continue
            for msg in messages:
                count(state, msg.metadata.sequence.stream, msg.data)
            save_state(args.state, state)
            for msg in messages:
                await msg.ack()
    finally:
        await nc.flush()
        await nc.close()
    return state["counts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS URL (binderflow up names it in <data_dir>/up.json)")
    parser.add_argument("--prefix", default="binderflow", help="binderflow's subject_prefix setting")
    parser.add_argument("--durable", default="analytics-launch-counts", help="name of the durable consumer")
    parser.add_argument("--state", default="launch-counts.json", help="where counts are kept between runs")
    parser.add_argument("--exit-when-idle", action="store_true", help="stop once everything stored has been read")
    args = parser.parse_args()
    counts = asyncio.run(run(args))
    print(json.dumps(dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))), indent=2))


if __name__ == "__main__":
    main()
