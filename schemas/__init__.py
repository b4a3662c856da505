"""The only place binderflow's events, commands and subject names are defined."""

from .commands import (
    COMMAND_TYPES,
    AnyCommand,
    BuildImage,
    Command,
    Heartbeat,
    LaunchRequest,
    ResolvedRepo,
    ResolveRef,
    StartServer,
    decode_command,
    decode_heartbeat,
)
from .events import (
    PHASES,
    TERMINAL_PHASES,
    FACT_KINDS,
    BUILD_STATUSES,
    AnyEvent,
    AnyPhaseEvent,
    BuildStatus,
    LoggedEvent,
    BuildEnded,
    BuildLogged,
    BuildStarted,
    LaunchRequested,
    RefResolved,
    BuildWaiting,
    ImageBuilt,
    ImagePushing,
    LaunchFailed,
    PhaseEvent,
    RepoFetching,
    ServerLaunching,
    ServerReady,
    decode_event,
    decode_phase_event,
    is_phase_event,
    encode_event,
    event_to_wire,
)
from .subjects import MSG_ID_HEADER, SERVICE_NAMES, Subjects
from .types import SCHEMA_VERSION

__all__ = [
    "BUILD_STATUSES", "BuildStatus", "COMMAND_TYPES", "LoggedEvent", "is_phase_event",
    "AnyEvent", "BuildEnded", "BuildStarted", "FACT_KINDS", "LaunchRequested", "RefResolved", "decode_event",
    "AnyCommand", "AnyPhaseEvent", "BuildImage", "BuildLogged", "BuildWaiting", "Command",
    "Heartbeat", "ImageBuilt", "ImagePushing", "LaunchFailed", "LaunchRequest", "MSG_ID_HEADER",
    "PHASES", "PhaseEvent", "RepoFetching", "ResolveRef", "ResolvedRepo", "SCHEMA_VERSION",
    "SERVICE_NAMES", "ServerLaunching", "ServerReady", "StartServer", "Subjects",
    "TERMINAL_PHASES", "decode_command", "decode_heartbeat", "decode_phase_event",
    "encode_event", "event_to_wire",
]
