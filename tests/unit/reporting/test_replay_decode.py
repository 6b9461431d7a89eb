"""The rebuild's decoding: the relay's type header lets it skip what no indicator needs and parse the rest in one
pass, with the same operations as the general way."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from services.reporting.domain.projection import UNUSED, project
from services.reporting.usecases.rebuild import decode
from shared.contracts import committees as cm
from shared.contracts import outreach as out
from shared.contracts import visits as vi
from shared.contracts.common import Category, Severity, VisitMode
from shared.events import Payload, new_envelope, registry
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


def envelope(payload: Payload) -> bytes:
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


def _completed(requirements: bool) -> vi.VisitCompleted:
    answers = [("r01", vi.ChecklistAnswer.YES), ("r02", vi.ChecklistAnswer.NO), ("r03", vi.ChecklistAnswer.YES)]
    return vi.VisitCompleted(
        visit_id="v1",
        campaign_id="c1",
        assignment_id="a1",
        teacher_id="t1",
        family_id="f1",
        student_ids=["s1"],
        org_path="/620400/620402/s1/g1/c1",
        mode=VisitMode.ONLINE,
        visited_on=AT.date(),
        duration_minutes=30,
        checklist=[vi.ChecklistItemAnswer(item_id=i, answer=a) for i, a in reversed(answers)],
        guidance_topics=["reading", "reading", "safety"],
        finding_count=1,
        occurred_at=AT,
        requirements=[vi.RequirementFact(item_id=i, answer=a, derived=i == "r01") for i, a in answers]
        if requirements
        else None,
        flags=[vi.RuleFlag(item_id="r02", reason="late")] if requirements else None,
    )


PAYLOADS = [
    ASSIGNMENT,
    _completed(True),
    _completed(False),
    vi.VisitMissed(
        visit_id="v2",
        campaign_id="c1",
        assignment_id="a2",
        teacher_id="t1",
        family_id="f2",
        org_path="/620400/620402/s1/g1/c1",
        reason=vi.MissReason.FAMILY_UNAVAILABLE,
        occurred_at=AT,
    ),
    vi.FindingRecorded(
        finding_id="fd1",
        student_id="s1",
        visit_id="v1",
        campaign_id="c1",
        teacher_id="t1",
        category=Category.LEFT_BEHIND,
        severity=Severity.HIGH,
        org_path="/620400/620402/s1/g1/c1",
        visited_on=AT.date(),
        recorded_at=AT,
    ),
    cm.AttendanceRecorded(
        parent_school_id="ps1",
        session_id="ss1",
        guardian_id="g1",
        org_path="/620400/620402/s1",
        attended=True,
        occurred_at=AT,
    ),
    cm.LectureGiven(
        lecture_id="l1",
        lecturer_id="t1",
        org_path="/620400/620402",
        topic=next(iter(cm.LectureTopic)),
        given_on=AT.date(),
        audience_org_paths=["/620400/620402/s1", "/620400/620402/s2"],
        headcount=40,
        occurred_at=AT,
    ),
    out.CaseOpened(
        case_id="k1",
        student_id="s1",
        org_path="/620400/620402/s1/g1/c1",
        risk_level=Severity.HIGH,
        categories=[Category.LEFT_BEHIND],
        occurred_at=AT,
        finding_id="fd1",
        finding_recorded_at=AT,
        first_contact_due=AT,
    ),
]


def test_each_payload_read_through_its_plain_fields_projects_as_its_model():
    # The lean parse builds no model: the projection reads dicts by attribute (nested answers too), with the
    # contract's defaults for fields an older event lacks.
    for payload in PAYLOADS:
        kind = registry.spec_for(payload).type
        ops, skipped = decode([record(envelope(payload), kind)])
        assert (ops, skipped) == (project(kind, payload), 0), kind


def test_a_typed_record_the_contract_refuses_is_skipped_either_way():
    broken = envelope(ASSIGNMENT).replace(b'"teacher_id":"t1"', b'"teacher_id":7')
    assert decode([record(broken, registry.spec_for(ASSIGNMENT).type)]) == ([], 1)
    assert decode([record(broken, None)]) == ([], 1)
