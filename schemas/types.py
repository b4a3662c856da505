"""Constrained value types shared by events and commands.

Rules live in the types, so malformed input fails when it is decoded at the edge
rather than deep inside a service.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

__all__ = ["LaunchId", "LAUNCH_ID_PATTERN", "EventId", "CommitSha", "NonEmptyStr", "SCHEMA_VERSION"]

# Bumped when the meaning of stored data changes; readers accept every older
# version. 2: `ready` events in the log carry the Jupyter token sealed
# (token_sealed), not in plain text; launch facts (requested, resolved,
# build_started, build_ended) join the log. 3: build log events (fetching,
# building, pushing) name their build attempt in `build_id`; before, only
# their event id did (schemas.identity.parse_event_id reads it there).
SCHEMA_VERSION = 3

# A launch id is one subject token: lower-case letters, digits and '-'.
# Patterns end in \Z, not $: "$" would also accept a trailing newline.
LAUNCH_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{7,63}\Z"
LaunchId = Annotated[str, Meta(pattern=LAUNCH_ID_PATTERN)]
EventId = Annotated[str, Meta(min_length=1, max_length=200)]
CommitSha = Annotated[str, Meta(pattern=r"^[0-9a-f]{40}([0-9a-f]{24})?\Z")]
NonEmptyStr = Annotated[str, Meta(min_length=1)]
