"""One trace per launch: trace context travels in NATS message headers from the
gateway through resolver, builder and launcher; and where spans are exported to.

The launch test runs the four services in this test's process (each its own
`serve` task), against the session's real nats-server, git daemon and package
index, with the SDK's in-memory exporter installed as the process's tracer
provider: separate processes would each need their own exporter. The exporter
tests run `setup_tracing` in a fresh interpreter, which may install a provider,
and post to a stand-in OTLP collector on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from schemas import LaunchRequest, ResolveRef, Subjects
from services.builder.main import serve as serve_builder
from services.gateway.main import serve as serve_gateway
from services.launcher.main import serve as serve_launcher
from services.resolver.main import serve as serve_resolver
from services.runtime import telemetry
from services.runtime.bus import EventPublisher, connect, ensure_consumer, ensure_streams
from services.runtime.settings import Settings, TelemetrySettings, load_settings
from services.runtime.worker import Worker

from .harness import ROOT, GitServer, Pipeline, launch, spec_for

SERVICES = ("gateway", "resolver", "builder", "launcher")
SPANS_TIMEOUT_SECONDS = 30.0


@pytest.fixture(scope="session")
def in_memory_spans() -> InMemorySpanExporter:
    """Every span this process makes, kept in memory: installed once, as OpenTelemetry
    allows one tracer provider per process."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another tracer provider was installed in this test process first"
    return exporter


class InProcessPipeline:
    """gateway, resolver, builder and launcher as tasks in this event loop, in their own namespace.

    Settings are those `Pipeline` gives its service processes, so both run alike.
    """

    def __init__(self, settings: Settings, gateway_url: str) -> None:
        self.settings = settings
        self.gateway_url = gateway_url
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        for name, serve in (("gateway", serve_gateway), ("resolver", serve_resolver), ("builder", serve_builder), ("launcher", serve_launcher)):
            self._tasks[name] = asyncio.create_task(serve(self.settings), name=f"binderflow-{name}")

    async def wait_healthy(self, timeout_seconds: float = 60.0) -> None:
        """Until the gateway reports every service alive (from their heartbeats)."""
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        last: object = None
        async with aiohttp.ClientSession() as session:
            while asyncio.get_running_loop().time() < deadline:
                self._raise_if_a_service_ended()
                try:
                    async with session.get(self.gateway_url + "/health") as resp:
                        if resp.status == 200:
                            return
                        last = await resp.text()
                except aiohttp.ClientConnectionError as exc:
                    last = exc
                await asyncio.sleep(0.2)
        raise TimeoutError(f"the in-process services were not healthy within {timeout_seconds} s (last: {last})")

    def _raise_if_a_service_ended(self) -> None:
        for name, task in self._tasks.items():
            if task.done():
                raise RuntimeError(f"{name} stopped early: {task.exception() if not task.cancelled() else 'cancelled'}")

    async def stop(self) -> None:
        # Cancelling a serve task runs its shutdown path (drain, stop servers, close
        # NATS) as SIGTERM would: in one process the four runtimes' signal handlers
        # replace each other, so a signal would reach only one of them.
        for task in self._tasks.values():
            task.cancel()
        await asyncio.wait(self._tasks.values(), timeout=60.0)
        # The runtimes took SIGINT and SIGTERM over on this loop; give them back so
        # Ctrl-C interrupts the rest of the test run again.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@pytest.fixture
async def in_process_pipeline(
    nats_url: str, package_index: str, shared_uv_cache: Path, tmp_path: Path, in_memory_spans: InMemorySpanExporter
) -> AsyncIterator[InProcessPipeline]:
    """The four services in this process, healthy, with spans going to `in_memory_spans`."""
    (tmp_path / "data").mkdir()
    (tmp_path / "logs").mkdir()
    process_pipeline = Pipeline(
        nats_url, f"t{uuid.uuid4().hex[:10]}", tmp_path / "data", package_index, tmp_path / "logs",
        # The test's provider is the one to use: the services must not install their own.
        extra_env={"BINDERFLOW_TELEMETRY_EXPORTER": "none"}, uv_cache=shared_uv_cache,
    )
    settings = load_settings(environ=process_pipeline.env)
    pipeline = InProcessPipeline(settings, process_pipeline.gateway_url)
    in_memory_spans.clear()
    pipeline.start()
    try:
        await pipeline.wait_healthy()
        yield pipeline
    finally:
        await pipeline.stop()


async def _finished_spans_of_launch(exporter: InMemorySpanExporter, launch_id: str, names: set[str], count: int = 0) -> list[ReadableSpan]:
    """The finished spans naming `launch_id`, once spans with all of `names` (and at
    least `count` spans) are among them: the last ones end a moment after the client
    sees `ready`, when their handlers return."""
    deadline = asyncio.get_running_loop().time() + SPANS_TIMEOUT_SECONDS
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.attributes and s.attributes.get("binderflow.launch_id") == launch_id]
        if names <= {s.name for s in spans} and len(spans) >= count:
            return spans
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"spans of launch {launch_id} did not finish within {SPANS_TIMEOUT_SECONDS} s: {[s.name for s in spans]}")
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_a_launch_is_one_trace_with_spans_from_every_service(
    in_process_pipeline: InProcessPipeline, git_server: GitServer, in_memory_spans: InMemorySpanExporter
) -> None:
    url = git_server.create(f"repo-{uuid.uuid4().hex[:8]}", {"requirements.txt": "tabulate\n"})
    result = await launch(in_process_pipeline.gateway_url, "git", spec_for(url, "main"))
    assert result.last["phase"] == "ready", result.events[-5:]
    launch_id = result.last["launch_id"]
    chain = ["launch", "resolver resolve_ref", "builder build_image", "launcher start_server"]

    of_launch = await _finished_spans_of_launch(in_memory_spans, launch_id, set(chain))

    assert len({s.context.trace_id for s in of_launch}) == 1, [(s.name, hex(s.context.trace_id)) for s in of_launch]
    trace_id = of_launch[0].context.trace_id
    spans = [s for s in in_memory_spans.get_finished_spans() if s.context.trace_id == trace_id]
    by_name = {s.name: s for s in spans}
    launch_span = by_name["launch"]
    assert launch_span.instrumentation_scope is not None and launch_span.instrumentation_scope.name == "binderflow.gateway"
    assert {s.instrumentation_scope.name for s in spans if s.instrumentation_scope} == {f"binderflow.{service}" for service in SERVICES}

    # A tree rooted at the gateway's span: each command's span is the child of the
    # span that published the command.
    span_ids = {s.context.span_id for s in spans}
    assert [s.name for s in spans if s.parent is None] == ["launch"]
    assert all(s.parent.span_id in span_ids for s in spans if s.parent is not None)
    for parent_name, child_name in zip(chain, chain[1:]):
        child = by_name[child_name]
        assert child.parent is not None and child.parent.span_id == by_name[parent_name].context.span_id, (child_name, parent_name)
        assert child.kind is SpanKind.CONSUMER
        assert child.attributes is not None
        assert child.attributes["binderflow.delivery_attempt"] == 1
        assert child.attributes["binderflow.outcome"] == "done"
        assert child.attributes["messaging.system"] == "nats"

    # The build's phases are spans under the builder's, one after another.
    build = by_name["builder build_image"]
    phase_names = ["builder fetching", "builder building", "builder pushing"]
    phases = sorted((s for s in spans if s.name in phase_names), key=lambda s: s.start_time or 0)
    assert [s.name for s in phases] == phase_names
    assert all(s.parent is not None and s.parent.span_id == build.context.span_id for s in phases)
    assert all((a.end_time or 0) <= (b.start_time or 0) for a, b in zip(phases, phases[1:]))
    assert (build.start_time or 0) <= (phases[0].start_time or 0) and (phases[-1].end_time or 0) <= (build.end_time or 0)


def test_a_failed_phase_is_the_error_span_of_its_work(in_memory_spans: InMemorySpanExporter) -> None:
    with trace.get_tracer("test").start_as_current_span("work") as work:
        phases = telemetry.PhaseSpans("builder", "launch-1")
    phases.enter("fetching")
    phases.enter("building")
    phases.fail(RuntimeError("uv failed"))
    phases.close()
    phases.close()  # closing twice ends nothing twice
    spans = [s for s in in_memory_spans.get_finished_spans() if s.attributes and s.attributes.get("binderflow.launch_id") == "launch-1"]
    assert [(s.name, s.status.status_code) for s in spans] == [("builder fetching", StatusCode.UNSET), ("builder building", StatusCode.ERROR)]
    assert all(s.parent is not None and s.parent.span_id == work.get_span_context().span_id for s in spans)
    assert spans[1].events[0].name == "exception"


class FailsFirstTry:
    """A resolver handler that raises on a command's first delivery and succeeds on the next."""

    def __init__(self) -> None:
        self.tries = 0
        self.succeeded = asyncio.Event()

    async def handle(self, command: ResolveRef) -> None:
        self.tries += 1
        if self.tries == 1:
            raise RuntimeError("provider unreachable")
        self.succeeded.set()

    async def give_up(self, command: ResolveRef, error: BaseException) -> None:
        raise AssertionError(f"gave up on {command.command_id}: {error}")


async def test_a_retried_command_is_an_error_span_and_its_retry_joins_the_same_trace(
    nats_url: str, in_memory_spans: InMemorySpanExporter
) -> None:
    settings = Settings(nats_url=nats_url, subject_prefix=f"t{uuid.uuid4().hex[:10]}")
    subjects = Subjects(settings.subject_prefix)
    nc = await connect(nats_url, "test-tracing")
    js = nc.jetstream()
    await ensure_streams(js, subjects, settings)
    # The consumer takes only commands published after it exists: make it before publishing.
    await ensure_consumer(js, subjects, ResolveRef)
    handler = FailsFirstTry()
    stopping = asyncio.Event()
    worker = Worker(js, subjects, ResolveRef, handler.handle, handler.give_up, max_concurrent=1)
    running = asyncio.create_task(worker.run(stopping))
    try:
        launch_id = uuid.uuid4().hex
        command = ResolveRef(
            command_id=f"{launch_id}.resolve", launch_id=launch_id, issued_at=datetime.now(timezone.utc), request=LaunchRequest(provider="git", spec="x/HEAD")
        )
        with trace.get_tracer("test").start_as_current_span("publisher") as publisher:
            await EventPublisher(js, subjects).command(command)
        await asyncio.wait_for(handler.succeeded.wait(), 30)
        spans = await _finished_spans_of_launch(in_memory_spans, launch_id, {"resolver resolve_ref"}, count=2)
    finally:
        stopping.set()
        await asyncio.wait_for(running, 10)
        await nc.close()

    failed, retried = sorted(spans, key=lambda s: s.start_time or 0)
    for span in (failed, retried):
        assert span.context.trace_id == publisher.get_span_context().trace_id
        assert span.parent is not None and span.parent.span_id == publisher.get_span_context().span_id
    assert failed.attributes is not None and retried.attributes is not None
    assert (failed.attributes["binderflow.delivery_attempt"], failed.attributes["binderflow.outcome"]) == (1, "retried")
    assert failed.status.status_code is StatusCode.ERROR
    assert [e.attributes["exception.message"] for e in failed.events if e.name == "exception" and e.attributes] == ["provider unreachable"]
    assert (retried.attributes["binderflow.delivery_attempt"], retried.attributes["binderflow.outcome"]) == (2, "done")
    assert retried.status.status_code is StatusCode.UNSET


def test_none_exporter_installs_no_tracer_provider() -> None:
    before = trace.get_tracer_provider()

    assert telemetry.setup_tracing(Settings(telemetry=TelemetrySettings(exporter="none")), "resolver") is None
    assert telemetry.make_span_exporter(TelemetrySettings()) is None
    assert trace.get_tracer_provider() is before


_PROBE = """
import asyncio
from opentelemetry import trace
from schemas import LaunchRequest, ResolveRef, Subjects
from services.runtime import telemetry
from services.runtime.bus import EventPublisher, connect, ensure_consumer, ensure_streams
from services.runtime.worker import Worker
from services.runtime.settings import load_settings

provider = telemetry.setup_tracing(load_settings(), "resolver")
assert provider is not None and trace.get_tracer_provider() is provider
with trace.get_tracer("probe").start_as_current_span("probe span"):
    pass
asyncio.run(telemetry.shutdown_tracing(provider))
"""


async def _run_probe(cwd: Path, **env: str) -> str:
    """Run `_PROBE` (install tracing from BINDERFLOW_* settings, make one span, stop)
    in a fresh interpreter, which may install its own tracer provider; returns its stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BINDERFLOW_", "OTEL_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _PROBE, cwd=cwd, env={**environ, "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    return stderr.decode()


@pytest.mark.slow
async def test_console_exporter_writes_each_span_of_the_service_to_stderr(tmp_path: Path) -> None:
    stderr = await _run_probe(tmp_path, BINDERFLOW_TELEMETRY_EXPORTER="console")

    spans = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert [s["name"] for s in spans] == ["probe span"], stderr
    assert spans[0]["resource"]["attributes"]["service.name"] == "binderflow-resolver"


class _OtlpCollector:
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps the trace requests it receives."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.received = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _traces(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        self.requests.append(ExportTraceServiceRequest.FromString(await request.read()))
        self.received.set()
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def spans(self) -> list[tuple[str, str]]:
        """(service.name, span name) of every span received."""
        out: list[tuple[str, str]] = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                service = next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
                out.extend((service, span.name) for scope in resource_spans.scope_spans for span in scope.spans)
        return out


@pytest.fixture
async def otlp_collector() -> AsyncIterator[_OtlpCollector]:
    """A stand-in OpenTelemetry collector (OTLP/HTTP) on 127.0.0.1."""
    collector = _OtlpCollector()
    await collector.start()
    yield collector
    await collector.stop()


async def test_otlp_exporter_posts_spans_to_the_configured_endpoint(otlp_collector: _OtlpCollector) -> None:
    settings = TelemetrySettings(exporter="otlp", otlp_endpoint=otlp_collector.url + "/v1/traces")
    provider = telemetry.make_tracer_provider(settings, "builder")
    assert provider is not None

    with provider.get_tracer("probe").start_as_current_span("probe span"):
        pass
    await telemetry.shutdown_tracing(provider)

    assert otlp_collector.spans() == [("binderflow-builder", "probe span")]


@pytest.mark.slow
async def test_otlp_exporter_without_an_endpoint_follows_the_sdk_variables(otlp_collector: _OtlpCollector, tmp_path: Path) -> None:
    await _run_probe(tmp_path, BINDERFLOW_TELEMETRY_EXPORTER="otlp", OTEL_EXPORTER_OTLP_ENDPOINT=otlp_collector.url)

    assert otlp_collector.spans() == [("binderflow-resolver", "probe span")]
