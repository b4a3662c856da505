"""Trace context across services: W3C traceparent in NATS message headers.

`inject` is called on every publish and `extract` on every command received, so
one launch is one trace with spans from gateway, resolver, builder and launcher.
`setup_tracing` decides where spans go (settings.telemetry.exporter); with the
default "none" no tracer provider is installed and every span is a cheap no-op.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import AbstractContextManager
from typing import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from .settings import Settings, TelemetrySettings

__all__ = [
    "PhaseSpans",
    "mark_error",
    "inject",
    "extract",
    "launch_span",
    "make_span_exporter",
    "make_tracer_provider",
    "setup_tracing",
    "shutdown_tracing",
]

log = logging.getLogger(__name__)


def inject(headers: dict[str, str]) -> None:
    """Add the current trace context (if any) to outgoing message headers."""
    propagate.inject(headers)


def extract(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context carried by an incoming message's headers."""
    return propagate.extract(dict(headers or {}))


def launch_span(launch_id: str, provider: str, spec: str) -> AbstractContextManager[trace.Span]:
    """The root span of one launch, opened by the gateway around the launch's stream.

    Every message published inside it carries its traceparent.
    """
    tracer = trace.get_tracer("binderflow.gateway")
    return tracer.start_as_current_span(
        "launch", attributes={"binderflow.launch_id": launch_id, "binderflow.provider": provider, "binderflow.spec": spec}
    )


def mark_error(span: trace.Span, error: BaseException) -> None:
    """Record `error` on `span` and give it ERROR status."""
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))


class PhaseSpans:
    """One span per phase of a long piece of work (a build's fetching, building,
    pushing), each a child of the span current when this was made, so a trace
    shows where a slow launch spent its time, not only that it was slow.
    """

    def __init__(self, service: str, launch_id: str) -> None:
        self._tracer = trace.get_tracer(f"binderflow.{service}")
        self._service = service
        self._attributes = {"binderflow.launch_id": launch_id}
        self._parent = otel_context.get_current()
        self._span: trace.Span | None = None

    def enter(self, phase: str) -> None:
        """End the phase under way (if any) and start `phase`."""
        self.close()
        self._span = self._tracer.start_span(f"{self._service} {phase}", context=self._parent, attributes=self._attributes)

    def fail(self, error: BaseException) -> None:
        """Mark the phase under way as the one that failed."""
        if self._span is not None:
            mark_error(self._span, error)

    def close(self) -> None:
        if self._span is not None:
            self._span.end()
            self._span = None


def _one_line_json(span: ReadableSpan) -> str:
    # One line per span keeps console output greppable beside the service's log lines.
    return span.to_json(indent=None) + "\n"


def make_span_exporter(telemetry: TelemetrySettings) -> SpanExporter | None:
    """The exporter `telemetry.exporter` names; None for "none".

    "console" writes one JSON line per span to stderr (where the service logs go);
    "otlp" posts OTLP/HTTP protobuf to `telemetry.otlp_endpoint`, or, when that is
    empty, wherever the SDK's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT /
    OTEL_EXPORTER_OTLP_ENDPOINT variables say (default http://localhost:4318/v1/traces).
    Raises ValueError for any other name (settings validation refuses those first).
    """
    if telemetry.exporter == "none":
        return None
    if telemetry.exporter == "console":
        return ConsoleSpanExporter(out=sys.stderr, formatter=_one_line_json)
    if telemetry.exporter == "otlp":
        # Imported here: the OTLP exporter pulls in protobuf and requests, which a
        # service with tracing off has no use for.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=telemetry.otlp_endpoint or None)
    raise ValueError(f"unknown telemetry exporter {telemetry.exporter!r}")


def make_tracer_provider(telemetry: TelemetrySettings, service: str, instance: str = "") -> TracerProvider | None:
    """A tracer provider for `service` exporting in batches to the configured exporter.

    Its resource names the service `binderflow-<service>` (and `instance`, if
    given). Returns None when the exporter is "none". Nothing is installed.
    """
    exporter = make_span_exporter(telemetry)
    if exporter is None:
        return None
    attributes: dict[str, str] = {SERVICE_NAME: f"binderflow-{service}"}
    if instance:
        attributes[SERVICE_INSTANCE_ID] = instance
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def setup_tracing(settings: Settings, service: str, instance: str = "") -> TracerProvider | None:
    """Install this process's tracer provider as settings.telemetry says.

    Returns the provider installed, to be passed to `shutdown_tracing` when the
    service stops, or None when nothing was installed: the exporter is "none"
    (the API's no-op provider stays, or whatever provider the embedding program,
    such as a test, installed), or a provider was installed before this call
    (OpenTelemetry allows one per process; that one is kept).
    """
    provider = make_tracer_provider(settings.telemetry, service, instance)
    if provider is None:
        return None
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        log.warning("a tracer provider is already installed in this process; %s keeps it", service)
        provider.shutdown()
        return None
    trace.set_tracer_provider(provider)
    log.info("tracing: %s spans go to the %s exporter", service, settings.telemetry.exporter)
    return provider


async def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Export the spans still queued, then stop exporting.

    Returns within the exporter's timeout (OTLP: OTEL_EXPORTER_OTLP_TIMEOUT, 10 s
    by default) even when the collector is down or hangs; those spans are lost.
    """
    if provider is None:
        return
    # Exporting is blocking I/O (an HTTP post to the collector): keep it off the event loop.
    await asyncio.to_thread(provider.shutdown)
