"""Contract rules: names, keys, generated files up to date, and only additive changes to a published .vN."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from shared.contracts import documents
from shared.contracts.common import Department
from shared.contracts.compat import breaking_changes
from shared.events import Registry, registry
from tools import docs


def test_every_type_is_named_by_the_rules_and_routed_to_its_service_topic():
    specs = registry.all()
    assert len(specs) >= 40
    for spec in specs:
        service, _aggregate, _event, version = spec.type.split(".")
        for topic in spec.topics:  # a templated topic (one per department) expands to several
            assert topic.startswith(f"{service}.{spec.topic.split('.')[1]}.") and topic.endswith(".events")
        assert version.startswith("v") and int(version[1:]) >= 1
        assert spec.key_field in spec.model.model_fields


def test_finding_and_case_events_are_keyed_by_student():
    assert registry.spec("visits.finding.recorded.v1").key_field == "student_id"
    assert registry.spec("outreach.case.opened.v1").key_field == "student_id"


def test_registry_refuses_bad_names_and_topics():
    reg = Registry()

    class P(BaseModel):
        x: str

    with pytest.raises(ValueError, match="must look like"):
        reg.register("VisitsFindingRecorded", topic="visits.finding.events", key="x")(P)
    with pytest.raises(ValueError, match="topic"):
        reg.register("visits.finding.recorded.v1", topic="findings", key="x")(P)
    with pytest.raises(ValueError, match="key field"):
        reg.register("visits.finding.recorded.v1", topic="visits.finding.events", key="nope")(P)


def test_committed_schemas_and_asyncapi_are_up_to_date():
    current = {path: text for path, text in docs.render_all().items() if path.parent != docs.OPENAPI}
    stale = [str(p) for p, text in current.items() if not p.exists() or p.read_text() != text]
    assert docs.ASYNCAPI in current and stale == [], "run: python -m tools.docs"


def test_current_contracts_are_compatible_with_the_published_schemas():
    assert docs.incompatible() == []


def schema(**props: dict) -> dict:
    return {"type": "object", "properties": props, "required": list(props)}


def test_additive_optional_field_is_compatible():
    old = schema(a={"type": "string"})
    new = {**schema(a={"type": "string"}), "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    new["required"] = ["a"]
    assert breaking_changes(old, new) == []


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        ({"type": "object", "properties": {}, "required": []}, "/a: field removed"),
        (schema(a={"type": "integer"}), "/a: type changed"),
        ({**schema(a={"type": "string"}, b={"type": "string"})}, "/b: became required"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": []}, "/a: no longer required"),
    ],
)
def test_breaking_changes_are_detected(new, problem):
    assert problem in breaking_changes(schema(a={"type": "string"}), new)


def test_removed_enum_value_is_breaking_and_added_one_is_not():
    old = schema(c={"enum": ["x", "y"], "type": "string"})
    assert breaking_changes(old, schema(c={"enum": ["x", "y", "z"], "type": "string"})) == []
    assert breaking_changes(old, schema(c={"enum": ["x"], "type": "string"})) == ["/c: enum values removed ['y']"]


def test_a_real_published_contract_change_would_fail(tmp_path, monkeypatch):
    spec = registry.spec("visits.finding.recorded.v1")
    published = json.loads((docs.SCHEMAS / f"{spec.type}.json").read_text())
    published["properties"]["legacy_field"] = {"type": "string"}
    published["required"].append("legacy_field")
    monkeypatch.setattr(docs, "SCHEMAS", tmp_path)
    for s in registry.all():
        (tmp_path / f"{s.type}.json").write_text(json.dumps(documents.schema_of(s)))
    (tmp_path / f"{spec.type}.json").write_text(json.dumps(published))
    assert docs.incompatible() == ["visits.finding.recorded.v1/legacy_field: field removed"]


def test_referral_facts_go_to_the_topic_of_their_department():
    spec = registry.spec("outreach.referral.requested.v1")
    assert spec.topic == "outreach.referral.{department}.events" and spec.public
    assert len(spec.topics) == len(Department) and "outreach.referral.health.events" in spec.topics
    payload = spec.model.model_validate(
        {
            "referral_id": "r1",
            "case_id": "c1",
            "department": "civil_affairs",
            "category": "left_behind",
            "urgency": "high",
            "org_path": "/620400/620402/s1",
            "occurred_at": "2026-01-01T00:00:00Z",
            "acknowledge_by": "2026-01-02T00:00:00Z",
        }
    )
    assert spec.topic_for(payload) == "outreach.referral.civil_affairs.events"
    assert "outreach.referral.events" not in registry.topics_for([spec.type])
    channel = documents.asyncapi({})["channels"]["outreach_referral_department_events"]
    assert channel["address"] == spec.topic and "public" in {t["name"] for t in channel["tags"]}
    assert channel["parameters"]["department"]["enum"] == [d.value for d in Department]
