"""NATS connection, idempotent JetStream setup and event publishing.

Streams and consumers are created or updated at every service start, so any
service may start first and may restart at any time.
"""

from __future__ import annotations

import asyncio
import logging
import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js import api as jsapi
from nats.js.errors import BadRequestError, NotFoundError

from schemas import MSG_ID_HEADER, Subjects, encode_event
from schemas.commands import Command
from schemas.events import BuildStarted, PhaseEvent
from schemas.identity import index_msg_id
from schemas.subjects import repo_key

from . import telemetry

from .settings import Settings

__all__ = ["connect", "ensure_streams", "ensure_consumer", "EventPublisher", "WORKER_ACK_WAIT_SECONDS", "WORKER_MAX_DELIVER"]

log = logging.getLogger(__name__)

# Default: a worker not heard from (ack or in-progress) for this long gets its message redelivered.
WORKER_ACK_WAIT_SECONDS = 30.0
# A command is tried at most this many times; the last try reports the failure.
WORKER_MAX_DELIVER = 4


async def connect(url: str, name: str, user: str = "", password: str = "") -> NATS:
    """Connect with endless reconnects; failover noise goes to debug logs."""

    async def error_cb(exc: Exception) -> None:
        if "permissions violation" in str(exc).lower() or "authorization" in str(exc).lower():
            # The broker refused this service something its permissions do not
            # allow (services/runtime/brokerauth.py): a bug worth seeing.
            log.error("nats: %s", exc)
        else:
            log.debug("nats error: %s", exc)

    async def disconnected_cb() -> None:
        log.warning("disconnected from NATS at %s; reconnecting", url)

    async def reconnected_cb() -> None:
        log.info("reconnected to NATS")

    return await nats.connect(
        url,
        name=name,
        error_cb=error_cb,
        disconnected_cb=disconnected_cb,
        reconnected_cb=reconnected_cb,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        # Lots of concurrent SSE streams fan out from one connection.
        pending_size=64 * 1024 * 1024,
        user=user or None,
        password=password or None,
    )


async def _add_or_update_stream(js: JetStreamContext, config: jsapi.StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        # Stream exists with other settings (e.g. retention changed in config).
        if exc.err_code in (10058, 10065):
            await js.update_stream(config)
        else:
            raise


async def ensure_streams(js: JetStreamContext, subjects: Subjects, settings: Settings) -> None:
    """Create (or bring up to date) the command and event streams."""
    events = settings.events
    await _add_or_update_stream(
        js,
        jsapi.StreamConfig(
            name=subjects.commands_stream,
            description="binderflow commands: resolve, build and launch work queues",
            subjects=[subjects.all_commands],
            retention=jsapi.RetentionPolicy.LIMITS,
            storage=jsapi.StorageType.FILE,
            max_age=events.commands_max_age_seconds,
            max_bytes=events.commands_max_bytes,
            discard=jsapi.DiscardPolicy.OLD,
            duplicate_window=events.duplicate_window_seconds,
            num_replicas=events.replicas,
        ),
    )
    await _add_or_update_stream(
        js,
        jsapi.StreamConfig(
            name=subjects.events_stream,
            description="binderflow launch events: the event log",
            subjects=subjects.event_log_subjects,
            retention=jsapi.RetentionPolicy.LIMITS,
            storage=jsapi.StorageType.FILE,
            max_age=events.max_age_seconds,
            max_bytes=events.max_bytes,
            max_msgs_per_subject=events.max_msgs_per_subject,
            max_consumers=events.max_consumers,
            discard=jsapi.DiscardPolicy.OLD,
            duplicate_window=events.duplicate_window_seconds,
            allow_direct=True,
            num_replicas=events.replicas,
        ),
    )


async def ensure_consumer(
    js: JetStreamContext, subjects: Subjects, command_type: type[Command], ack_wait_seconds: float = WORKER_ACK_WAIT_SECONDS
) -> str:
    """Create the durable pull consumer all replicas of the service consuming `command_type` share; returns its name."""
    durable = subjects.durable(command_type)
    config = jsapi.ConsumerConfig(
        durable_name=durable,
        filter_subject=subjects.commands(command_type),
        ack_policy=jsapi.AckPolicy.EXPLICIT,
        deliver_policy=jsapi.DeliverPolicy.NEW,
        ack_wait=ack_wait_seconds,
        max_deliver=WORKER_MAX_DELIVER,
        max_ack_pending=1000,
    )
    try:
        info = await js.consumer_info(subjects.commands_stream, durable)
    except NotFoundError:
        info = None
    if info is None:
        try:
            await js.add_consumer(subjects.commands_stream, config)
        except BadRequestError as exc:
            # Another replica created it at the same moment.
            log.debug("consumer %s exists: %s", durable, exc)
    elif info.config.ack_wait != ack_wait_seconds:
        # Settings changed since the consumer was made: bring it up to date.
        await js.add_consumer(subjects.commands_stream, config)
    return durable


class EventPublisher:
    """Publishes phase events and commands with their ids as Nats-Msg-Id.

    A publish is retried on timeouts; JetStream's duplicate window makes the retry
    safe, so an event is stored once even if an ack was lost.
    """

    def __init__(self, js: JetStreamContext, subjects: Subjects, attempts: int = 5) -> None:
        self._js = js
        self._subjects = subjects
        self._attempts = attempts

    async def _publish(self, subject: str, payload: bytes, msg_id: str, headers: dict[str, str] | None = None) -> jsapi.PubAck:
        hdrs = {MSG_ID_HEADER: msg_id, **(headers or {})}
        # The current trace context rides along, so the next service's span joins the launch's trace.
        telemetry.inject(hdrs)
        delay = 0.2
        for attempt in range(1, self._attempts + 1):
            try:
                return await self._js.publish(subject, payload, timeout=5, headers=hdrs)
            except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError, nats.errors.ConnectionClosedError) as exc:
                if attempt == self._attempts:
                    raise
                log.warning("publish to %s failed (%s); retrying", subject, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    async def event(self, event: PhaseEvent) -> jsapi.PubAck:
        """Append one phase event (or fact) to its launch's subjects (log lines to the log subject)."""
        subject = self._subjects.subject_for_phase(event.launch_id, event.phase)
        return await self._publish(subject, encode_event(event), event.event_id)

    async def build_started(self, event: BuildStarted) -> None:
        """Record a build on its launch and in its repository's build index (for "latest build log")."""
        await self.event(event)
        if event.repo_url:
            await self._publish(self._subjects.repo_builds(repo_key(event.repo_url)), encode_event(event), index_msg_id(event.event_id))

    async def command(self, command: Command) -> jsapi.PubAck:
        """Queue a command on its work queue, for the service that consumes its type."""
        return await self._publish(self._subjects.commands(type(command)), encode_event(command), command.command_id)
