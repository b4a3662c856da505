"""The pull-consumer loop every worker service (resolver, builder, launcher) runs.

All replicas of a service bind to one durable consumer, so adding a replica adds
capacity and each command is handled by one replica at a time. Acks are explicit;
long handlers send in-progress acks so JetStream does not hand their command to
another replica; a failing command is retried a bounded number of times and the
last try reports the failure to the client through `give_up`. Each command is
handled inside a span that continues the trace its message's headers carry.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Awaitable, Callable, Generic, TypeVar

import msgspec
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from schemas import Subjects
from schemas.commands import Command, decode_command

from . import telemetry
from .bus import WORKER_ACK_WAIT_SECONDS, WORKER_MAX_DELIVER, ensure_consumer
from .metrics import WORKER_COMMAND_SECONDS, WORKER_COMMANDS, WorkerOutcome

__all__ = ["Worker", "Handler", "GiveUp"]

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Command)
Handler = Callable[[C], Awaitable[None]]
GiveUp = Callable[[C, BaseException], Awaitable[None]]

# What became of a command, on its span as on the binderflow_worker_commands metric.
_OUTCOME_ATTRIBUTE = "binderflow.outcome"


class Worker(Generic[C]):
    """Runs `handle` for each command of `command_type` on its work queue, as a replica
    of the service that consumes it (`command_type.consumer`)."""

    def __init__(
        self,
        js: JetStreamContext,
        subjects: Subjects,
        command_type: type[C],
        handle: Handler[C],
        give_up: GiveUp[C],
        max_concurrent: int,
        ack_wait_seconds: float = WORKER_ACK_WAIT_SECONDS,
    ) -> None:
        self._ack_wait_seconds = ack_wait_seconds
        self._js = js
        self._subjects = subjects
        self._service = command_type.consumer
        self._type = command_type
        self._handle = handle
        self._give_up = give_up
        self._slots = asyncio.Semaphore(max(1, max_concurrent))
        self._tasks: set[asyncio.Task[None]] = set()
        self._tracer = trace.get_tracer(f"binderflow.{self._service}")
        self._span_name = _span_name(self._service, command_type)

    async def run(self, stopping: asyncio.Event) -> None:
        """Fetch and handle commands until `stopping` is set, then wait for in-flight work."""
        durable = await ensure_consumer(self._js, self._subjects, self._type, self._ack_wait_seconds)
        psub = await self._js.pull_subscribe_bind(durable=durable, stream=self._subjects.commands_stream)
        log.info("%s consuming %s", self._service, self._subjects.commands(self._type))
        try:
            while not stopping.is_set():
                await self._slots.acquire()
                if stopping.is_set():
                    self._slots.release()
                    break
                try:
                    msgs = await psub.fetch(1, timeout=1.0)
                except (NatsTimeoutError, asyncio.TimeoutError):
                    self._slots.release()
                    continue
                except Exception as exc:  # connection trouble: back off, keep going
                    self._slots.release()
                    log.warning("fetch failed: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                for msg in msgs:
                    task = asyncio.create_task(self._process(msg))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            await self.drain()
            try:
                await psub.unsubscribe()
            except Exception:
                pass

    async def drain(self, grace_seconds: float = 10.0) -> None:
        """Let in-flight commands finish; cancel (and so nak) those that do not."""
        if not self._tasks:
            return
        done, pending = await asyncio.wait(set(self._tasks), timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5.0)

    async def _keep_alive(self, msg: Msg) -> None:
        # In-progress acks reset the ack timer so a long build keeps its command.
        while True:
            await asyncio.sleep(self._ack_wait_seconds / 3)
            try:
                await msg.in_progress()
            except Exception as exc:
                log.debug("in-progress ack failed: %s", exc)

    async def _process(self, msg: Msg) -> None:
        started = time.monotonic()
        # The publisher of this command put its span's context in the headers, so
        # this span joins the launch's trace as that span's child.
        with self._tracer.start_as_current_span(
            self._span_name,
            context=telemetry.extract(msg.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.operation.type": "process",
                "messaging.destination.name": msg.subject,
                "messaging.consumer.group.name": self._subjects.durable(self._type),
            },
            # Outcomes are recorded by hand below: a retried command is an error
            # worth seeing, a cancelled one (shutdown, handed on) is not.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await self._process_in_span(msg, span)
            finally:
                WORKER_COMMAND_SECONDS.labels(self._service).observe(time.monotonic() - started)
                self._slots.release()

    async def _process_in_span(self, msg: Msg, span: Span) -> None:
        try:
            command = decode_command(msg.data)
            if not isinstance(command, self._type):
                raise msgspec.ValidationError(f"expected {self._type.__name__}, got {type(command).__name__}")
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            # A malformed command will never succeed: drop it, loudly.
            log.error("dropping malformed command on %s: %s", msg.subject, exc)
            self._record(span, WorkerOutcome.MALFORMED, exc)
            await msg.term()
            return
        attempts = msg.metadata.num_delivered
        span.set_attributes(
            {"binderflow.launch_id": command.launch_id, "binderflow.command_id": command.command_id, "binderflow.delivery_attempt": attempts}
        )
        keep_alive = asyncio.create_task(self._keep_alive(msg))
        try:
            await self._handle(command)
        except asyncio.CancelledError:
            # Shutting down mid-command: hand it to another replica now.
            self._record(span, WorkerOutcome.REQUEUED)
            try:
                await asyncio.shield(msg.nak())
            except Exception:
                pass
            raise
        except Exception as exc:
            if attempts >= WORKER_MAX_DELIVER:
                log.exception("giving up on %s for launch %s after %d tries", type(command).__name__, command.launch_id, attempts)
                self._record(span, WorkerOutcome.GAVE_UP, exc)
                try:
                    await self._give_up(command, exc)
                finally:
                    await msg.term()
            else:
                log.warning("%s for launch %s failed (try %d): %r; retrying", type(command).__name__, command.launch_id, attempts, exc)
                self._record(span, WorkerOutcome.RETRIED, exc)
                await msg.nak(delay=min(2.0 * attempts, 10.0))
        else:
            self._record(span, WorkerOutcome.DONE)
            await msg.ack()
        finally:
            keep_alive.cancel()

    def _record(self, span: Span, outcome: WorkerOutcome, error: BaseException | None = None) -> None:
        """What became of a command, on the binderflow_worker_commands metric and on its span
        (with ERROR status when `error` is given: a requeue on shutdown is not an error)."""
        WORKER_COMMANDS.labels(self._service, outcome.value).inc()
        span.set_attribute(_OUTCOME_ATTRIBUTE, outcome.value)
        if error is not None:
            telemetry.mark_error(span, error)


def _span_name(service: str, command_type: type) -> str:
    """The span name of a command: "builder build_image" for the builder's BuildImage."""
    return f"{service} {re.sub(r'(?<!^)(?=[A-Z])', '_', command_type.__name__).lower()}"

