"""The rebuild's decoding: the relay's type header lets it skip what no indicator needs and parse the rest in one
pass, with the same operations as the general way."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from services.reporting.domain.projection import UNUSED, project
from services.reporting.usecases.rebuild import decode
from shared.contracts import committees as cm
from shared.contracts import visits as vi
from shared.events import new_envelope, registry
from shared.relay import TYPE_HEADER

AT = datetime(2026, 10, 9, 8, 30, tzinfo=UTC)
ASSIGNMENT = vi.AssignmentMade(
    assignment_id="a1",
    campaign_id="c1",
    teacher_id="t1",
    family_id="f1",
    student_ids=["s1"],
    org_path="/620400/620402/s1/g1/c1",
    occurred_at=AT,
)
STUDENT = cm.StudentRegistered(
    student_id="s1", class_id="c1", org_path="/620400/620402/s1/g1/c1", family_id="f1", occurred_at=AT
)


def record(value: bytes, header: str | None, offset: int = 0) -> ConsumerRecord[bytes, bytes]:
    headers = [(TYPE_HEADER, header.encode())] if header else []
    return ConsumerRecord("t", 0, offset, 0, 0, None, value, None, 0, len(value), headers)


def envelope(payload: vi.AssignmentMade | cm.StudentRegistered) -> bytes:
    spec = registry.spec_for(payload)
    return new_envelope(spec, payload, correlation_id="c", causation_id=None).model_dump_json().encode()


def test_a_typed_record_gives_the_same_operations_as_the_general_way():
    kind = registry.spec_for(ASSIGNMENT).type
    with_header, skipped = decode([record(envelope(ASSIGNMENT), kind)])
    without, skipped_too = decode([record(envelope(ASSIGNMENT), None)])
    assert with_header == without == project(kind, ASSIGNMENT)
    assert (skipped, skipped_too) == (0, 0)


def test_a_type_no_indicator_needs_is_not_parsed_when_its_header_says_so():
    kind = registry.spec_for(STUDENT).type
    assert kind in UNUSED
    assert decode([record(b"not json at all", kind)]) == ([], 0)  # never parsed
    assert decode([record(envelope(STUDENT), None)]) == ([], 0)  # without the header: parsed, projects nothing


def test_a_header_that_is_not_the_envelopes_type_is_not_believed():
    lying = record(envelope(ASSIGNMENT), "visits.visit.missed.v1")
    assert decode([lying]) == (project(registry.spec_for(ASSIGNMENT).type, ASSIGNMENT), 0)


def test_a_record_that_is_no_event_is_counted_as_skipped():
    assert decode([record(b"{}", None, 0), record(b"\xff", registry.spec_for(ASSIGNMENT).type, 1)]) == ([], 2)
