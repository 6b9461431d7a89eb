"""The kit's tracing rules without the stack: off by default, causes kept per event, batches get their own context."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from shared import context, outbox, tracing
from shared.contracts.common import Category, Severity
from shared.contracts.visits import FindingRecorded
from shared.events import Envelope, occurred_at


def finding(n: int) -> FindingRecorded:
    return FindingRecorded(
        finding_id=f"f{n}",
        visit_id="v1",
        campaign_id="c1",
        teacher_id="t1",
        student_id=f"s{n}",
        org_path="/620400/620402/s1/g1/c1",
        category=Category.LEFT_BEHIND,
        severity=Severity.HIGH,
        visited_on=occurred_at().date(),
        recorded_at=occurred_at(),
    )


@pytest.fixture
def no_exporter(monkeypatch):
    for var in (*tracing.ENDPOINT_VARS, "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(var, raising=False)


def envelope(row: outbox.Row) -> Envelope:
    return Envelope.model_validate_json(row.envelope)


def test_without_an_exporter_nothing_is_traced_and_trace_ids_still_flow(no_exporter):
    assert not tracing.enabled() and tracing.tracer("visits") is None and tracing.current_span() is None
    caused_by = context.for_event("e1", "corr-1", f"00-{'a' * 32}-{'b' * 16}-01")
    rows = outbox.outbox_rows([finding(1)], caused_by)
    headers = orjson.loads(rows[0].headers)
    assert context.parse_traceparent(headers["traceparent"]) == "a" * 32
    assert headers["traceparent"] != f"00-{'a' * 32}-{'b' * 16}-01"  # a span id of its own under the trace


def test_rows_of_several_causes_keep_each_cause(no_exporter):
    one = context.for_event("e1", "corr-1", None)
    two = context.for_event("e2", "corr-2", None)
    rows = [envelope(outbox.outbox_rows([finding(n)], cause)[0]) for n, cause in ((1, one), (2, two))]
    assert [(e.correlationid, e.causationid) for e in rows] == [("corr-1", "e1"), ("corr-2", "e2")]
    token = context.set_current(one)
    try:
        [current] = map(envelope, outbox.outbox_rows([finding(3)]))  # no cause named: the current work's
    finally:
        context.reset(token)
    assert (current.correlationid, current.causationid) == ("corr-1", "e1")


def test_a_batch_keeps_a_shared_correlation_and_names_no_single_cause():
    a, b = context.for_event("e1", "corr", None), context.for_event("e2", "corr", None)
    batch = context.for_batch([a, b])
    assert batch.correlation_id == "corr" and batch.causation_id is None
    mixed = context.for_batch([a, context.for_event("e3", "other", None)])
    assert mixed.correlation_id not in {"corr", "other"}


def test_when_traced_events_name_the_span_they_were_written_under(no_exporter):
    spans = InMemorySpanExporter()
    with tracing.exporting_to(SimpleSpanProcessor(spans)):
        tracer = tracing.tracer("outreach")
        assert tracer is not None
        span = tracer.start_span("process visits.finding.events", kind=SpanKind.CONSUMER)
        ctx = context.for_event("e1", "corr", None, span=span)
        rows = outbox.outbox_rows([finding(1)], ctx)
        env = envelope(rows[0])
        span.end()
        sc = span.get_span_context()
        want = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"
        assert orjson.loads(rows[0].headers)["traceparent"] == want
        assert ctx.trace_id == f"{sc.trace_id:032x}" and env.causationid == "e1"
        [done] = spans.get_finished_spans()
        assert done.resource.attributes["service.name"] == "outreach"
    assert not tracing.enabled() and tracing.tracer("outreach") is None


def test_queries_that_would_start_a_trace_are_dropped(no_exporter):
    spans = InMemorySpanExporter()
    with tracing.exporting_to(SimpleSpanProcessor(spans)):
        tracer = tracing.tracer("visits")
        assert tracer is not None
        tracer.start_span("SELECT", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}).end()
        with tracer.start_as_current_span("POST /api/v1/visits", kind=SpanKind.SERVER):
            tracer.start_span("INSERT", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}).end()
        assert sorted(s.name for s in spans.get_finished_spans()) == ["INSERT", "POST /api/v1/visits"]
