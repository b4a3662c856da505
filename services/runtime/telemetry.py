"""Trace context across services: W3C traceparent in NATS message headers.

`inject` is called on every publish and `extract` on every command received, so
one launch is one trace with spans from gateway, resolver, builder and launcher.
Without a configured tracer provider both are cheap no-ops.
"""

from __future__ import annotations

from typing import Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate

__all__ = ["inject", "extract"]


def inject(headers: dict[str, str]) -> None:
    """Add the current trace context (if any) to outgoing message headers."""
    propagate.inject(headers)


def extract(headers: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context carried by an incoming message's headers."""
    return propagate.extract(dict(headers or {}))


def launch_span(launch_id: str, provider: str, spec: str):  # type: ignore[no-untyped-def]
    """The root span of one launch, opened by the gateway around the launch's stream.

    Every message published inside it carries its traceparent.
    """
    from opentelemetry import trace

    tracer = trace.get_tracer("binderflow.gateway")
    return tracer.start_as_current_span(
        "launch", attributes={"binderflow.launch_id": launch_id, "binderflow.provider": provider, "binderflow.spec": spec}
    )
