"""Pure kit rules: settings, envelopes, trace context, auth tokens and scoping."""

from __future__ import annotations

import orjson
import pytest

from shared import context, scope
from shared.auth import Principal, Role, Verifier, issue_token
from shared.contracts.common import school_of
from shared.contracts.visits import FindingRecorded
from shared.events import Envelope, envelope_json, new_envelope, occurred_at, registry
from shared.problems import Problem, _pointer
from shared.settings import DEV_SECRET, ServiceSettings


class DemoSettings(ServiceSettings):
    service_name = "demo"


def test_settings_refuse_production_without_the_identity_provider():
    with pytest.raises(ValueError, match="jwt_jwks_url"):
        DemoSettings(env="production", jwt_secret="s" * 40)
    assert DemoSettings(env="dev").jwt_secret == DEV_SECRET


def test_settings_fall_back_to_platform_variables_and_default_schema(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@h:1/db")
    monkeypatch.setenv("KAFKA_TOPIC_REPLICATION_FACTOR", "3")
    s = DemoSettings()
    assert s.database_url == "postgresql://x@h:1/db"
    assert s.topic_replication == 3
    assert s.db_schema == "demo"
    assert DemoSettings(topic_prefix="t1.").topic("visits.finding.events") == "t1.visits.finding.events"


def finding() -> FindingRecorded:
    return FindingRecorded(
        finding_id="f1",
        student_id="stu-9",
        visit_id="v1",
        campaign_id="c1",
        teacher_id="t1",
        category="left_behind",
        severity="high",
        org_path="/620400/620402/s1/g1/c1",
        visited_on="2026-03-01",
        recorded_at=occurred_at(),
    )


def test_envelope_is_cloudevents_with_correlation_and_causation():
    spec = registry.spec_for(finding())
    env = new_envelope(spec, finding(), correlation_id="corr", causation_id="cause")
    doc = env.model_dump(mode="json")
    assert doc["specversion"] == "1.0"
    assert doc["type"] == "visits.finding.recorded.v1"
    assert doc["source"] == "/services/visits"
    assert doc["subject"] == "f1"
    assert doc["dataschema"] == "urn:hss:schema:visits.finding.recorded.v1"
    assert doc["correlationid"] == "corr" and doc["causationid"] == "cause"
    assert doc["time"].endswith("Z") or "+00:00" in doc["time"]
    assert spec.key(finding()) == "stu-9"


def test_the_envelope_text_is_what_the_envelope_model_writes():
    """`envelope_json` writes each envelope as text, without the model: the same document the model writes."""
    odd = {"finding_id": "f2", "teacher_id": '教师 "王" \\ 1\t'}  # non-ASCII, quotes, backslash, tab
    payloads = [finding(), FindingRecorded.model_validate({**finding().model_dump(), **odd})]
    texts = envelope_json(payloads, ["6f1d7a3e-0000-4000-8000-000000000001", "6f1d7a3e-0000-4000-8000-000000000002"],
                          correlation_id="corr", causation_id=None)  # fmt: skip
    for text, payload in zip(texts, payloads, strict=True):
        env = Envelope.model_validate_json(text)  # what consumers read it with
        spec = registry.spec_for(payload)
        model = Envelope(
            id=env.id,
            source=f"/services/{spec.service}",
            type=spec.type,
            time=env.time,
            subject=spec.subject(payload),
            dataschema=spec.dataschema,
            correlationid="corr",
            causationid=None,
            data=payload.model_dump(mode="json"),
        )
        assert orjson.loads(text) == orjson.loads(model.model_dump_json())
        assert type(payload).model_validate(env.data) == payload
    assert [orjson.loads(t)["id"] for t in texts] == [
        "6f1d7a3e-0000-4000-8000-000000000001",
        "6f1d7a3e-0000-4000-8000-000000000002",
    ]
    assert orjson.loads(texts[0])["time"].endswith("Z")


def test_traceparent_round_trip_and_rejection():
    ctx = context.TraceContext(correlation_id="c", trace_id=context.new_trace_id())
    tp = ctx.traceparent
    assert context.parse_traceparent(tp) == ctx.trace_id
    assert context.parse_traceparent("00-" + "0" * 32 + "-" + "1" * 16 + "-01") is None
    assert context.parse_traceparent("garbage") is None
    event_ctx = context.for_event("e1", "c", tp)
    assert event_ctx.causation_id == "e1" and event_ctx.trace_id == ctx.trace_id


async def test_dev_tokens_verify_and_carry_scope():
    verifier = Verifier(DemoSettings())
    p = await verifier.verify(issue_token(role="teacher", org_path="/620400/620402/s1", staff_id="st-1"))
    assert p.roles == frozenset({Role.TEACHER}) and p.staff_id == "st-1"
    with pytest.raises(Problem) as err:
        await verifier.verify(issue_token(role="teacher", org_path="/x", secret="another-secret-of-32-bytes-length!"))
    assert err.value.status == 401
    with pytest.raises(Problem):
        await verifier.verify(issue_token(role="teacher", org_path="/x", ttl_seconds=-10))
    with pytest.raises(ValueError):
        issue_token(role="janitor", org_path="/x")


def test_org_scope_is_a_path_prefix_on_segment_boundaries():
    p = Principal(subject="u", roles=frozenset({Role.SCHOOL_ADMIN}), org_path="/620400/620402/s1")
    assert scope.covers(p, "/620400/620402/s1")
    assert scope.covers(p, "/620400/620402/s1/g1/c1")
    assert not scope.covers(p, "/620400/620402/s10")
    assert not scope.covers(p, "/620400/620402")
    with pytest.raises(Problem) as err:
        scope.require(p, "/620400/620403/s2")
    assert err.value.status == 403
    with pytest.raises(Problem):
        p.require(Role.BUREAU_ADMIN)


def test_org_path_helpers_and_problem_pointers():
    assert school_of("/620400/620421/s1/g1") == "s1"
    assert school_of("/620400/620421") is None
    assert _pointer(("body", "visits", 3, "mode")) == "/visits/3/mode"
    assert _pointer(("query", "limit")) == "/query/limit"
