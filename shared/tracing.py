"""OpenTelemetry traces across every hop: HTTP → outbox row → Kafka headers → consumer → the events it emits.

Tracing is on when an exporter is configured: the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) sends spans over OTLP/HTTP (`OTEL_SDK_DISABLED=true` turns it off again), and
tests install an in-memory exporter with `export_to`. When it is off, nothing of OpenTelemetry runs: the kit's own
W3C `traceparent` handling (shared/context.py) still carries one trace id from a request through every event it
causes, for the logs, at the cost it always had.

When on, the kit makes these spans, so services need no code of their own:

* HTTP: the FastAPI instrumentation's server span per request (route template as its name; health and metrics
  routes left out), the asyncpg instrumentation's span per query (statements without their parameters).
* Outbox: a row written in a transaction keeps the context of the span it was written under (the request's, or
  the consumed event's) in its `traceparent` header.
* Relay: a PRODUCER span `send <topic>` per row, child of that stored context, from the send to Kafka's ack; the
  Kafka record's `traceparent` header is this span's, so consumers continue the trace from the publish.
* Inbox, per-record handlers: a CONSUMER span `process <topic>` per record, child of the record's `traceparent`;
  the handler's queries and the events it writes are under it.
* Inbox, batch handlers (`shared.inbox.Batch`): one span cannot have a parent per record, so as OpenTelemetry's
  messaging conventions say for batches, the batch's span `process <group>` is a new trace **linked** to every
  record's context; its queries are under it. Each record also gets its own `process <topic>` span, child of the
  record's context and linked to the batch span, and `Event.trace` carries it: events the handler writes with
  `outbox.add_caused(conn, [(event.trace, payloads), ...])` continue their cause's trace (and correlation id),
  so one trace still shows a visit, its finding, the case opened and the referral requested. Events a batch
  handler writes without naming a cause belong to the batch span. A batch of one is handled like a single record.

Every service in a process gets its own provider (its `service.name`); they share the exporter. The asyncpg
instrumentation is process-wide and reports under the first service set up (one, in production).
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
EXCLUDED_URLS = "/healthz,/readyz,/metrics"
W3C = TraceContextTextMapPropagator()


class _Processors(SynchronousMultiSpanProcessor):
    """The span processors every service's provider in this process feeds; a test's can be taken out again."""

    def remove_span_processor(self, span_processor: SpanProcessor) -> None:
        with self._lock:
            self._span_processors = tuple(p for p in self._span_processors if p is not span_processor)

    @property
    def empty(self) -> bool:
        return not self._span_processors


_processors = _Processors()
_providers: dict[str, TracerProvider] = {}
_tracers: dict[str, Tracer] = {}
_state = {"on": False, "from_env": False, "asyncpg": False, "exit_hook": False}


class _NoLoneQueries(sampling.Sampler):
    """Drops database queries that start a trace (the relay's polls, the backlog gauges): noise, not requests."""

    def __init__(self, delegate: sampling.Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> sampling.SamplingResult:
        if kind is SpanKind.CLIENT and attributes and ("db.system" in attributes or "db.system.name" in attributes):
            return sampling.SamplingResult(sampling.Decision.DROP)
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"NoLoneQueries{{{self.delegate.get_description()}}}"


def _exporter_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(v, "").strip() for v in ENDPOINT_VARS)


def _from_env() -> None:
    """Add the OTLP exporter once, when the environment names an endpoint."""
    if _state["from_env"] or not _exporter_configured():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # only when exporting

    _state["from_env"] = True
    export_to(BatchSpanProcessor(OTLPSpanExporter()))


def export_to(processor: SpanProcessor) -> None:
    """Send every span of this process to `processor` too (tests: a SimpleSpanProcessor on an in-memory exporter).

    Call it before the services' apps are created: tracing is decided when the kit builds them.
    """
    if not _state["exit_hook"]:
        _state["exit_hook"] = True
        atexit.register(_processors.shutdown)
    _state["on"] = True
    _processors.add_span_processor(processor)


@contextlib.contextmanager
def exporting_to(processor: SpanProcessor) -> Iterator[None]:
    """Tracing on for the block, spans also to `processor` (a test's in-memory exporter); off again after it when
    nothing else exports (apps and consumers built inside keep their spans; asyncpg is uninstrumented)."""
    export_to(processor)
    try:
        yield
    finally:
        processor.force_flush()
        _processors.remove_span_processor(processor)
        if _processors.empty:
            _state["on"] = False
            _tracers.clear()
            if _state["asyncpg"]:
                from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

                AsyncPGInstrumentor().uninstrument()
                _state["asyncpg"] = False


def enabled() -> bool:
    """Whether spans are made and exported in this process (decided from the environment on first use)."""
    _from_env()
    return _state["on"]


def provider(service: str) -> TracerProvider:
    """The tracer provider of one service (its `service.name`), feeding the process's exporters."""
    found = _providers.get(service)
    if found is None:
        sampler = sampling.ParentBased(root=_NoLoneQueries(sampling._get_from_env_or_default()))
        found = _providers[service] = TracerProvider(
            sampler=sampler,
            resource=Resource.create({"service.name": service}),
            active_span_processor=_processors,
            shutdown_on_exit=False,
        )
    return found


def tracer(service: str) -> Tracer | None:
    """The kit's tracer for a service, or None when tracing is off (callers skip all span work then)."""
    if not enabled():
        return None
    found = _tracers.get(service)
    if found is None:
        found = _tracers[service] = provider(service).get_tracer("shared.kit")
    return found


def instrument_app(app: Any, service: str) -> None:
    """Trace a service's FastAPI app and (once per process) asyncpg, when tracing is on."""
    if not enabled():
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider(service),
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],  # one server span per request, not one per ASGI message
    )
    if not _state["asyncpg"]:
        _state["asyncpg"] = True
        AsyncPGInstrumentor().instrument(tracer_provider=provider(service))


def flush(timeout_seconds: float = 5.0) -> None:
    """Export what is buffered (at a service's shutdown)."""
    if _state["on"]:
        _processors.force_flush(int(timeout_seconds * 1000))


def current_span() -> Span | None:
    """The active span when it is a real one (tracing on, inside a request or a handled event), else None."""
    span = trace.get_current_span()
    return span if span.get_span_context().is_valid else None


def parent_from(headers: Mapping[str, str]) -> Context:
    """The context a W3C `traceparent` header names (an empty context when it is absent or malformed)."""
    return W3C.extract(headers)


def link_to(traceparent: str | None) -> Link | None:
    """A link to the span a W3C `traceparent` names, or None when it names none."""
    sc = trace.get_current_span(parent_from({"traceparent": traceparent or ""})).get_span_context()
    return Link(sc) if sc.is_valid else None


def new_trace() -> Context:
    """The parent context of a span that starts a trace of its own (and may link to others)."""
    return Context()


def traceparent_of(span: Span) -> str:
    """The W3C `traceparent` header value naming `span`."""
    sc = span.get_span_context()
    return f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"


def trace_id_of(span: Span) -> str:
    """The 32-hex-digit trace id of a span."""
    return f"{span.get_span_context().trace_id:032x}"


def activate(span: Span) -> object:
    """Make `span` the current one (parent of queries and of events written); a token for `deactivate`."""
    return otel_context.attach(trace.set_span_in_context(span))


def deactivate(token: object) -> None:
    """Undo `activate`."""
    otel_context.detach(token)  # type: ignore[arg-type]


def end_failed(span: Span, exc: BaseException) -> None:
    """Record an exception on a span and end it as an error."""
    span.record_exception(exc)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:300]))
    span.end()


__all__ = [
    "Link",
    "SpanKind",
    "activate",
    "current_span",
    "deactivate",
    "enabled",
    "end_failed",
    "export_to",
    "exporting_to",
    "flush",
    "instrument_app",
    "link_to",
    "new_trace",
    "parent_from",
    "provider",
    "trace_id_of",
    "traceparent_of",
    "tracer",
]
