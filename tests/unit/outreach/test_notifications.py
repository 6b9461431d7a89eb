"""Notification rules: who is told, when a deadline is due soon, what a mail says, when a failed mail is retried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.outreach.domain import notifications as rules
from services.outreach.domain.carers import staff_member
from services.outreach.handlers import consumers
from services.outreach.settings import Rules
from shared.clock import ManualClock
from shared.contracts.common import Category, Department, Severity, StaffRole
from shared.contracts.outreach import (
    CarerAssignment,
    CaseAssigned,
    CaseEscalated,
    NotificationCreated,
    NotificationKind,
    ReferralAccepted,
    ReferralEscalated,
)
from shared.events import Envelope, check_built, envelope_json, registry, type_of

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FACTS = {
    "case_id": "case-1",
    "student_id": "stu-secret",
    "org_path": "/620400/620402/s001/g3/c2",
    "risk_level": Severity.HIGH,
    "categories": [Category.LEFT_BEHIND],
    "occurred_at": NOW,
}


def test_an_assignment_tells_its_new_carers_an_escalation_and_an_answer_tell_the_case_carers_once_each():
    carers = [CarerAssignment(staff_id=s, role=StaffRole.CLASS_TEACHER, org_path="/620400") for s in ("t2", "t1")]
    assigned = rules.notices_for(CaseAssigned(**FACTS, carers=carers), ["someone-else"])
    assert [(n.recipient_id, n.kind, n.link) for n in assigned] == [
        ("t1", NotificationKind.CASE_ASSIGNED, "/api/v1/cases/case-1"),
        ("t2", NotificationKind.CASE_ASSIGNED, "/api/v1/cases/case-1"),
    ]
    escalated = CaseEscalated(**FACTS, escalated_to="/620400/620402", reason="no contact", due_at=NOW)
    assert [n.recipient_id for n in rules.notices_for(escalated, ["t1", "mh", "t1"])] == ["mh", "t1"]
    answer = ReferralAccepted(
        referral_id="ref-9",
        case_id="case-1",
        department=Department.HEALTH,
        category=Category.HEALTH_NEED,
        urgency=Severity.HIGH,
        org_path="/620400/620402/s001",
        occurred_at=NOW,
    )
    [told] = rules.notices_for(answer, ["t1"])
    assert (told.kind, told.referral_id, told.link) == (
        NotificationKind.REFERRAL_ANSWERED,
        "ref-9",
        "/api/v1/referrals/ref-9",
    )
    assert (
        rules.notices_for(escalated, []) == []
    )  # a case without carers tells nobody (its escalation goes up the tree)


DISTRICT, SCHOOL = "/620400/620402", "/620400/620402/s001"
STAFF = [
    staff_member("head", ["principal"], SCHOOL, None),
    staff_member("vp", ["vice_principal"], SCHOOL, None),
    staff_member("teacher", ["class_teacher", "subject_teacher"], SCHOOL, "c2"),
    staff_member("mh-team", ["mental_health_teacher"], SCHOOL, None),
    staff_member("office-1", [], DISTRICT, None),
    staff_member("office-2", ["subject_teacher"], DISTRICT, None),
    staff_member("other-district", [], "/620400/620403", None),
    staff_member("bureau", [], "/620400", None),
]


def test_the_administrators_of_a_level_are_a_schools_leaders_or_everyone_at_a_district_or_city_office():
    assert rules.administrators(SCHOOL, STAFF) == ["head", "vp"]
    assert rules.administrators(DISTRICT, STAFF) == ["office-1", "office-2"]
    assert rules.administrators("/620400", STAFF) == ["bureau"]
    assert rules.administrators("/620400/620409", STAFF) == []  # nobody placed there: nobody extra is told


def test_an_escalation_tells_the_carers_and_the_administrators_of_the_level_it_went_to():
    escalated = CaseEscalated(**FACTS, escalated_to=DISTRICT, reason="first_contact_overdue", due_at=NOW)
    assert rules.escalated_to(escalated) == DISTRICT
    admins = rules.administrators(DISTRICT, STAFF)
    told = rules.notices_for(escalated, ["t1"], admins)
    assert [(n.recipient_id, n.kind) for n in told] == [
        ("office-1", NotificationKind.CASE_ESCALATED),
        ("office-2", NotificationKind.CASE_ESCALATED),
        ("t1", NotificationKind.CASE_ESCALATED),
    ]
    # A chased referral (accepted, not resolved in time) and an unacknowledged one: the same people, its link.
    for reason in ("unresolved", "unacknowledged"):
        chased = ReferralEscalated(
            referral_id="ref-9",
            case_id="case-1",
            department=Department.CIVIL_AFFAIRS,
            category=Category.LEFT_BEHIND,
            urgency=Severity.HIGH,
            org_path=SCHOOL,
            occurred_at=NOW,
            escalated_to=DISTRICT,
            reason=reason,
        )
        told = rules.notices_for(chased, ["t1", "office-1"], admins)
        assert [(n.recipient_id, n.kind, n.link) for n in told] == [
            (r, NotificationKind.REFERRAL_ESCALATED, "/api/v1/referrals/ref-9") for r in ("office-1", "office-2", "t1")
        ]
    assert rules.escalated_to(CaseAssigned(**FACTS, carers=[])) is None


def test_a_deadline_is_due_soon_inside_the_window_and_never_once_passed_or_when_switched_off():
    assert rules.due_soon(NOW + timedelta(hours=11), NOW, 12)
    assert rules.due_soon(NOW + timedelta(hours=12), NOW, 12)
    assert not rules.due_soon(NOW + timedelta(hours=12, seconds=1), NOW, 12)
    assert not rules.due_soon(NOW, NOW, 12)  # due now is overdue, not due soon
    assert not rules.due_soon(NOW - timedelta(hours=1), NOW, 12)
    assert not rules.due_soon(NOW + timedelta(hours=1), NOW, 0)
    assert not rules.due_soon(None, NOW, 12)
    # one notice per case and deadline: a later deadline is a new fact
    assert rules.due_soon_source("c", NOW) != rules.due_soon_source("c", NOW + timedelta(days=1))


def test_the_mail_is_minimal_a_subject_and_a_link_with_the_notification_as_message_id():
    msg = rules.email(
        "n-1", NotificationKind.CASE_ASSIGNED, "/api/v1/cases/case-1", "t@s.example", "hss@x", "https://h/"
    )
    assert msg["To"] == "t@s.example" and msg["From"] == "hss@x"
    assert msg["Subject"] == "[HSS] A care case was assigned to you"
    assert msg["Message-ID"] == "<n-1@notifications.hss>"
    body = msg.get_content()
    assert "https://h/api/v1/cases/case-1" in body
    assert set(rules.SUBJECTS) == set(NotificationKind)


def test_failed_mails_are_retried_with_capped_exponential_backoff_and_parked_after_the_last_attempt():
    delays = [(rules.retry_at(n, NOW, 30, 3600) - NOW).total_seconds() for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert not rules.gives_up(11, 12) and rules.gives_up(12, 12)


def test_outreach_reads_none_of_its_own_events_back():
    """The notices of outreach's facts are written in the facts' transactions (`usecases.notifications.publish`):
    no consumer group of outreach takes in an event outreach publishes (two such groups cost the reaction bench
    about a fifth more CPU per finding)."""
    own = {s.type for s in registry.all() if s.topic.startswith("outreach.")}
    assert type_of(CaseAssigned) in own
    groups = consumers(Rules(), ManualClock()).items()
    taken = {group: sorted(set(b if isinstance(b, dict) else b.types) & own) for group, b in groups}
    assert taken and all(types == [] for types in taken.values()), taken


def test_a_notice_event_is_built_as_the_contract_writes_it():
    """`rules.created` builds `NotificationCreated` without a model: its fields validate against the contract and
    write the model's own JSON, byte for byte, for every kind, with and without a referral (and in an envelope)."""
    at = datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=UTC)
    for kind in NotificationKind:
        for referral in (None, "ref-1"):
            [notice] = rules.notices(kind, "case-1", ["t-1"], referral)
            built = rules.created("n-1", notice, at)
            check_built(built)
            [text] = envelope_json([built], [str(uuid.uuid4())], correlation_id="c-1", causation_id=None)
            envelope = Envelope.model_validate_json(text)
            assert envelope.type == "outreach.notification.created.v1"
            assert NotificationCreated.model_validate(envelope.data).model_dump() == built.fields
