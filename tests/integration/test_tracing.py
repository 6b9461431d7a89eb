"""One OpenTelemetry trace per visit, across every hop, on the real stack (PostgreSQL, Kafka, visits and outreach).

Three teachers record a visit each, with a finding that opens a case and asks a department for help. Outreach
starts once the three findings are on their topic, so it applies them in one batch (a set-based handler): the
chain must still run, per visit, from the HTTP request through the outbox and Kafka to the case and the referral
it caused, and the batch must link all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.outreach.app import create as outreach_app
from services.outreach.handlers import FINDINGS_GROUP
from services.outreach.settings import OutreachSettings
from services.visits.app import create as visits_app
from services.visits.settings import VisitsSettings
from shared import tracing
from shared.contracts.outreach import CASE, REFERRAL_TOPICS
from shared.contracts.visits import FINDING
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.visits.conftest import Env, bearer, completed
from tests.integration.visits.directory import build_district, publish

pytestmark = pytest.mark.integration

VISITS = 3


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every span of this test's services, in memory (tracing is off again afterwards)."""
    spans = InMemorySpanExporter()
    with tracing.exporting_to(SimpleSpanProcessor(spans)):
        yield spans


def span_id(traceparent: str) -> int:
    return int(traceparent.split("-")[2], 16)


def service(span: ReadableSpan) -> Any:
    return span.resource.attributes["service.name"]


def attr(span: ReadableSpan, name: str) -> Any:
    return (span.attributes or {}).get(name)


async def test_a_visit_its_finding_case_and_referral_share_one_trace(exporter, make_settings, raw_conn):
    # One partition per topic: outreach finds the three findings in one place and applies them as one batch.
    vs = make_settings(VisitsSettings, topic_partitions=1)
    os_ = make_settings(OutreachSettings, topic_partitions=1)
    directory = build_district(schools=1, classes=1, families_per_class=VISITS, shared_families=0)
    await publish(vs, directory.events)

    requests: dict[str, dict[str, str]] = {}  # student -> correlation id and finding id of their visit
    async with serve(visits_app(vs)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        env = Env(http, vs, directory, raw_conn)
        await wait_for(lambda: _loaded(env), timeout=60)
        assignments = await env.assignments((await env.launch())["campaign_id"])
        assert len(assignments) == VISITS
        for a in assignments:
            [student] = a["student_ids"]
            finding = {"student_id": student, "category": "family_hardship", "severity": "high"}
            teacher = bearer("teacher", directory.teachers[a["teacher_id"]], a["teacher_id"])
            r = await http.post("/api/v1/visits", json=completed(a["assignment_id"], [finding]), headers=teacher)
            assert r.status_code == 201, r.text
            requests[student] = {"correlation": r.headers["x-correlation-id"], "finding": r.json()["finding_ids"][0]}
        findings = await env.events(FINDING, expect=VISITS)
    finding_event = {m["value"]["data"]["student_id"]: m["value"]["id"] for m in findings}

    async with serve(outreach_app(os_)):
        cases = await read_topic(os_.kafka_bootstrap_servers, os_.topic(CASE), expect=VISITS, timeout=60)
        referral_topics = [os_.topic(t) for t in REFERRAL_TOPICS]
        referrals = await read_topic(os_.kafka_bootstrap_servers, referral_topics, expect=VISITS, timeout=60)
    spans = {s.context.span_id: s for s in exporter.get_finished_spans()}

    def parent(s: ReadableSpan) -> ReadableSpan:
        assert s.parent is not None, f"{s.name} has no parent"
        assert s.parent.span_id in spans, f"the parent of {s.name} was not exported"
        return spans[s.parent.span_id]

    opened = [m for m in cases if m["value"]["type"] == "outreach.case.opened.v1"]
    assert len(opened) == VISITS and len(referrals) == VISITS
    by_student = {m["value"]["data"]["student_id"]: m for m in opened}
    referral_of_case = {m["value"]["data"]["case_id"]: m for m in referrals}
    traces = set()
    consumed = []
    for student, req in requests.items():
        case = by_student[student]
        referral = referral_of_case[case["value"]["data"]["case_id"]]
        for msg in (case, referral):
            # The envelope keeps the visit's correlation id and names the finding event as its cause...
            assert msg["value"]["correlationid"] == req["correlation"]
            assert msg["value"]["causationid"] == finding_event[student]
        # ...and its traceparent is outreach's publish span, child of the processing of that finding event,
        send_case = spans[span_id(case["headers"]["traceparent"])]
        send_referral = spans[span_id(referral["headers"]["traceparent"])]
        for send in (send_case, send_referral):
            assert send.kind is SpanKind.PRODUCER and service(send) == "outreach"
        assert attr(send_case, "cloudevents.event_type") == "outreach.case.opened.v1"
        assert attr(send_referral, "cloudevents.event_type") == "outreach.referral.requested.v1"
        process = parent(send_case)
        assert parent(send_referral) is process
        assert process.name == "process visits.finding.events" and process.kind is SpanKind.CONSUMER
        assert service(process) == "outreach"
        assert attr(process, "cloudevents.event_id") == finding_event[student]
        # ...child of visits' publish span of the finding, child of the HTTP request that recorded the visit.
        send_finding = parent(process)
        assert send_finding.name == "send visits.finding.events" and service(send_finding) == "visits"
        assert attr(send_finding, "cloudevents.event_id") == finding_event[student]
        http_span = parent(send_finding)
        assert http_span.kind is SpanKind.SERVER and service(http_span) == "visits"
        assert attr(http_span, "http.route") == "/api/v1/visits"
        chain = [http_span, send_finding, process, send_case, send_referral]
        assert len({s.context.trace_id for s in chain}) == 1
        traces.add(http_span.context.trace_id)
        consumed.append((process, send_finding))
    assert len(traces) == VISITS  # one trace per visit, not one for the batch

    # The batch: one span linked to the three findings' publish spans; each finding's processing links to it.
    [batch] = [s for s in spans.values() if s.name == f"process {FINDINGS_GROUP}"]
    assert batch.kind is SpanKind.CONSUMER and attr(batch, "messaging.batch.message_count") == VISITS
    assert {link.context.span_id for link in batch.links} == {send.context.span_id for _, send in consumed}
    for process, _ in consumed:
        assert [link.context.span_id for link in process.links] == [batch.context.span_id]
    # The batch's queries are traced under it (the asyncpg instrumentation).
    queries = [s for s in spans.values() if s.parent is not None and s.parent.span_id == batch.context.span_id]
    assert queries and all(s.kind is SpanKind.CLIENT and attr(s, "db.system") for s in queries)


async def _loaded(env: Env) -> bool:
    d = env.directory
    return (
        await env.count("students") == d.students
        and await env.count("families") == len(d.families)
        and await env.count("staff") == len(d.teachers) + 1  # and the principal
        and await env.count("org_units") == 4  # district, school, grade, class
    )
