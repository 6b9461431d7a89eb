"""Contract rules: names, keys, generated files up to date, and only additive changes to a published .vN."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from shared.contracts import generate
from shared.contracts.compat import breaking_changes
from shared.events import Registry, registry


def test_every_type_is_named_by_the_rules_and_routed_to_its_service_topic():
    specs = registry.all()
    assert len(specs) >= 40
    for spec in specs:
        service, _aggregate, _event, version = spec.type.split(".")
        assert spec.topic == f"{service}.{spec.topic.split('.')[1]}.events"
        assert version.startswith("v") and spec.major >= 1
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
    stale = [str(p) for p, text in generate.render_all().items() if not p.exists() or p.read_text() != text]
    assert stale == [], "run: python -m shared.contracts.generate"


def test_current_contracts_are_compatible_with_the_published_schemas():
    assert generate.incompatible() == []


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
    published = json.loads((generate.SCHEMAS / f"{spec.type}.json").read_text())
    published["properties"]["legacy_field"] = {"type": "string"}
    published["required"].append("legacy_field")
    monkeypatch.setattr(generate, "SCHEMAS", tmp_path)
    for s in registry.all():
        (tmp_path / f"{s.type}.json").write_text(json.dumps(generate.schema_of(s)))
    (tmp_path / f"{spec.type}.json").write_text(json.dumps(published))
    assert generate.incompatible() == ["visits.finding.recorded.v1/legacy_field: field removed"]
