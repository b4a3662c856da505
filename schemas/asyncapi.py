"""An AsyncAPI 3.0 document of every NATS subject binderflow uses and every payload on it.

Generated, never written by hand: addresses come from `Subjects`, payload
schemas from the msgspec types (msgspec.json.schema_components), so the
document cannot drift from the code. `binderflow events asyncapi` prints it;
docs/asyncapi.json is its committed copy (a test keeps them equal).
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import msgspec

from .commands import BuildImage, Heartbeat, ResolveRef, StartServer
from .events import (
    BuildEnded,
    BuildLogged,
    BuildStarted,
    BuildWaiting,
    ImageBuilt,
    ImagePushing,
    LaunchFailed,
    LaunchRequested,
    RefResolved,
    RepoFetching,
    ServerLaunching,
    ServerReady,
)
from .subjects import MSG_ID_HEADER, SERVICE_NAMES, TRACEPARENT_HEADER, Subjects
from .types import SCHEMA_VERSION

__all__ = ["asyncapi_document", "ASYNCAPI_VERSION"]

ASYNCAPI_VERSION = "3.0.0"

# Addresses are made by Subjects with this stand-in prefix, then shown as the
# `{prefix}` parameter: every name keeps coming from schemas/subjects.py.
_STAND_IN_PREFIX = "asyncapiprefix"
_SUBJECTS = Subjects(_STAND_IN_PREFIX)

# Launch events in the order a launch meets them (facts first where they come first).
_LAUNCH_EVENT_TYPES: tuple[type[msgspec.Struct], ...] = (
    LaunchRequested,
    RefResolved,
    BuildWaiting,
    RepoFetching,
    BuildStarted,
    ImagePushing,
    BuildEnded,
    ImageBuilt,
    ServerLaunching,
    ServerReady,
    LaunchFailed,
)
_ALL_TYPES: tuple[type[msgspec.Struct], ...] = (
    ResolveRef,
    BuildImage,
    StartServer,
    *_LAUNCH_EVENT_TYPES,
    BuildLogged,
    Heartbeat,
)


def _address(name: str) -> str:
    """A subject (or durable name) with its prefix shown as `{prefix}`."""
    assert name.startswith(_STAND_IN_PREFIX), name
    return "{prefix}" + name[len(_STAND_IN_PREFIX):]


def _stream(name: str) -> str:
    """A stream name with its (upper-case) prefix shown as `{PREFIX}`."""
    assert name.startswith(_STAND_IN_PREFIX.upper()), name
    return "{PREFIX}" + name[len(_STAND_IN_PREFIX):]


_PREFIX_PARAMETER = {
    "description": "The installation's `subject_prefix` setting (lower-case letters, digits, '-' and '_'); "
    "stream names use it in upper case.",
    "default": "binderflow",
}
_LAUNCH_ID_PARAMETER = {"description": "The launch's id: lower-case letters, digits and '-' (8 to 64 characters)."}


def _clean_description(text: str) -> str:
    return inspect.cleandoc(text)


def _portable_pattern(pattern: str) -> str:
    # Python's `\Z` (end of string, not before a final newline) is ECMAScript's `$`
    # without the multiline flag, which JSON Schema validators use.
    return re.sub(r"\\Z$", "$", pattern)


def _polish(schema: Any) -> Any:
    """JSON Schema that any validator reads: clean docstrings, ECMAScript patterns."""
    if isinstance(schema, dict):
        out = {key: _polish(value) for key, value in schema.items()}
        if isinstance(out.get("description"), str):
            out["description"] = _clean_description(out["description"])
        if isinstance(out.get("pattern"), str):
            out["pattern"] = _portable_pattern(out["pattern"])
        return out
    if isinstance(schema, list):
        return [_polish(item) for item in schema]
    return schema


def _mark_datetimes(components: dict[str, Any], types: tuple[type[msgspec.Struct], ...]) -> None:
    """Add `format: date-time` to every datetime field (msgspec says only `string`)."""
    for struct in types:
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        _mark_struct(components, info)


def _mark_struct(components: dict[str, Any], info: msgspec.inspect.StructType) -> None:
    schema = components.get(info.cls.__name__)
    if schema is None:
        return
    for f in info.fields:
        if isinstance(f.type, msgspec.inspect.DateTimeType):
            schema["properties"][f.encode_name]["format"] = "date-time"
        elif isinstance(f.type, msgspec.inspect.StructType):
            _mark_struct(components, f.type)


def _payload_schemas() -> dict[str, Any]:
    _, components = msgspec.json.schema_components(_ALL_TYPES, ref_template="#/components/schemas/{name}")
    _mark_datetimes(components, _ALL_TYPES)
    components = _polish(components)
    components["MessageHeaders"] = {
        "type": "object",
        "description": "NATS headers of every command and stored event.",
        "properties": {
            MSG_ID_HEADER: {
                "type": "string",
                "description": "The event's `event_id` (a command's `command_id`): JetStream drops a republished "
                "message with the same id within the stream's duplicate window.",
            },
            TRACEPARENT_HEADER: {
                "type": "string",
                "description": "W3C trace context of the launch, when tracing is on: one trace per launch across services.",
            },
        },
        "required": [MSG_ID_HEADER],
    }
    return components


def _message(struct: type[msgspec.Struct], *, with_headers: bool = True) -> dict[str, Any]:
    config = struct.__struct_config__
    doc = _clean_description(struct.__doc__ or "")
    message: dict[str, Any] = {
        "name": struct.__name__,
        "title": struct.__name__,
        "summary": doc.split("\n\n")[0].replace("\n", " "),
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{struct.__name__}"},
    }
    if with_headers:
        message["headers"] = {"$ref": "#/components/schemas/MessageHeaders"}
    if config.tag_field:
        message["x-discriminator"] = {"field": config.tag_field, "value": config.tag}
    return message


def _refs(*structs: type[msgspec.Struct]) -> dict[str, Any]:
    return {s.__name__: {"$ref": f"#/components/messages/{s.__name__}"} for s in structs}


def _channels() -> dict[str, Any]:
    s = _SUBJECTS
    commands_stream = _stream(s.commands_stream)
    events_stream = _stream(s.events_stream)
    return {
        "resolveCommands": {
            "address": _address(s.commands(ResolveRef)),
            "title": "Resolve commands",
            "description": f"The resolver's work queue (stream `{commands_stream}`, durable consumer "
            f"`{_address(s.durable(ResolveRef))}` shared by its replicas).",
            "parameters": {"prefix": _PREFIX_PARAMETER},
            "messages": _refs(ResolveRef),
            "x-jetstream-stream": commands_stream,
        },
        "buildCommands": {
            "address": _address(s.commands(BuildImage)),
            "title": "Build commands",
            "description": f"The builder's work queue (stream `{commands_stream}`, durable consumer "
            f"`{_address(s.durable(BuildImage))}`).",
            "parameters": {"prefix": _PREFIX_PARAMETER},
            "messages": _refs(BuildImage),
            "x-jetstream-stream": commands_stream,
        },
        "launchCommands": {
            "address": _address(s.commands(StartServer)),
            "title": "Launch commands",
            "description": f"The launcher's work queue (stream `{commands_stream}`, durable consumer "
            f"`{_address(s.durable(StartServer))}`).",
            "parameters": {"prefix": _PREFIX_PARAMETER},
            "messages": _refs(StartServer),
            "x-jetstream-stream": commands_stream,
        },
        "launchEvents": {
            "address": _address(s.launch_events("{launch_id}")),
            "title": "Launch events",
            "description": f"BinderHub's phase events of one launch and the launch facts (requested, resolved, "
            f"build_started, build_ended), in stream `{events_stream}`. Every message is one JSON object tagged by "
            f"`phase`. Analytics read `{_address(s.all_launch_events)}`: every launch, without build log lines.",
            "parameters": {"prefix": _PREFIX_PARAMETER, "launch_id": _LAUNCH_ID_PARAMETER},
            "messages": _refs(*_LAUNCH_EVENT_TYPES),
            "x-jetstream-stream": events_stream,
        },
        "launchLog": {
            "address": _address(s.launch_log("{launch_id}")),
            "title": "Build log",
            "description": f"One `building` event per build log line of one launch, in stream `{events_stream}`. "
            f"A watcher reads `{_address(s.launch_all('{launch_id}'))}` to get events and lines in one order.",
            "parameters": {"prefix": _PREFIX_PARAMETER, "launch_id": _LAUNCH_ID_PARAMETER},
            "messages": _refs(BuildLogged),
            "x-jetstream-stream": events_stream,
        },
        "repoBuilds": {
            "address": _address(s.repo_builds("{repo_key}")),
            "title": "Builds of a repository",
            "description": f"A copy of every BuildStarted, indexed by repository (stream `{events_stream}`): "
            "the last message names a repository's latest build.",
            "parameters": {
                "prefix": _PREFIX_PARAMETER,
                "repo_key": {
                    "description": "schemas.subjects.repo_key(repo_url): the first 24 hex digits of the SHA-256 of the "
                    "repository URL, lower-cased, without a trailing '/' or '.git'."
                },
            },
            "messages": _refs(BuildStarted),
            "x-jetstream-stream": events_stream,
        },
        "heartbeats": {
            "address": _address(s.heartbeat("{service}")),
            "title": "Heartbeats",
            "description": "Liveness beacons every few seconds, on core NATS (not stored).",
            "parameters": {
                "prefix": _PREFIX_PARAMETER,
                "service": {"description": "The service sending.", "enum": list(SERVICE_NAMES)},
            },
            "messages": _refs(Heartbeat),
        },
    }


def _operation(action: str, channel: str, messages: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in messages],
    }


def _operations(channels: dict[str, Any]) -> dict[str, Any]:
    def names(channel: str) -> list[str]:
        return list(channels[channel]["messages"])

    return {
        "queueResolve": _operation("send", "resolveCommands", names("resolveCommands"), "The gateway asks for a launch's ref to be resolved."),
        "resolve": _operation("receive", "resolveCommands", names("resolveCommands"), "A resolver takes a resolve command."),
        "queueBuild": _operation("send", "buildCommands", names("buildCommands"), "The resolver asks for an environment to be built."),
        "build": _operation("receive", "buildCommands", names("buildCommands"), "A builder takes a build command."),
        "queueLaunch": _operation("send", "launchCommands", names("launchCommands"), "The resolver or a builder asks for a server."),
        "launch": _operation("receive", "launchCommands", names("launchCommands"), "A launcher takes a launch command."),
        "publishLaunchEvents": _operation(
            "send", "launchEvents", names("launchEvents"), "Services append a launch's phase events and facts to the log."
        ),
        "consumeLaunchEvents": _operation(
            "receive", "launchEvents", names("launchEvents"),
            "Gateways stream them to clients; analytics consumers read them (see docs/analytics.md).",
        ),
        "publishBuildLog": _operation("send", "launchLog", names("launchLog"), "A builder appends each build log line."),
        "consumeBuildLog": _operation("receive", "launchLog", names("launchLog"), "Gateways stream the lines; `binderflow logs` prints them."),
        "indexBuild": _operation("send", "repoBuilds", names("repoBuilds"), "A builder records each build under its repository."),
        "findLatestBuild": _operation("receive", "repoBuilds", names("repoBuilds"), "Gateways find a repository's latest build log."),
        "beat": _operation("send", "heartbeats", names("heartbeats"), "Each service says it is alive."),
        "watchHealth": _operation("receive", "heartbeats", names("heartbeats"), "Gateways report service health on /health."),
    }


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document (a JSON-ready dict). Pure and deterministic."""
    channels = _channels()
    messages = {struct.__name__: _message(struct, with_headers=struct is not Heartbeat) for struct in _ALL_TYPES}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "binderflow",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "Commands and the event log of binderflow, a BinderHub built as four services over NATS JetStream. "
                f"Payloads are schema version {SCHEMA_VERSION} (`schema_version` in each event); readers accept every "
                "older version, and fields are only ever added (with defaults), so a reader must ignore fields it does "
                "not know. `ready` events in the log carry the Jupyter token sealed (`token_sealed`), never in plain text."
            ),
            "x-schema-version": SCHEMA_VERSION,
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:4222",
                "protocol": "nats",
                "description": "The NATS server binderflow uses (`nats_url`; `binderflow up` starts a private one "
                "and names its URL in <data_dir>/up.json).",
            }
        },
        "channels": channels,
        "operations": _operations(channels),
        "components": {"schemas": _payload_schemas(), "messages": messages},
    }
