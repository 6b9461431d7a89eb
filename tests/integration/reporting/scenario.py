"""A small scripted city: directory, a campaign with visits and findings, cases, committees and sessions.

Every event is a real contract payload. EXPECTED holds the figures a person would count by hand.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from services.reporting.handlers import handlers
from shared import kafka
from shared.contracts import committees as cm
from shared.contracts import outreach as out
from shared.contracts import visits as vi
from shared.contracts.common import Category, Department, OrgLevel, Severity, StaffRole, VisitMode
from shared.events import new_envelope, registry

CITY = "/620400"
D1 = "/620400/620402"
D2 = "/620400/620403"
S1 = f"{D1}/s1"
S2 = f"{D1}/s2"
S3 = f"{D2}/s3"
S1G1 = f"{S1}/g1"
S1C1 = f"{S1G1}/c1"
S1C2 = f"{S1G1}/c2"
S2G1 = f"{S2}/g1"
S2C1 = f"{S2G1}/c1"
S3G1 = f"{S3}/g1"
S3C1 = f"{S3G1}/c1"
CAMPAIGN = "camp-2026-autumn"
ITEMS = ["i1", "i2", "i3"]

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=5)
DAY1 = date(2026, 10, 10)
DAY2 = date(2026, 10, 11)


def t(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def _unit(uid: str, path: str, level: OrgLevel, name: str) -> cm.OrgUnitRegistered:
    parent = path.rsplit("/", 1)[0] or None
    return cm.OrgUnitRegistered(
        org_unit_id=uid, parent_id=parent, level=level, org_path=path, name=name, occurred_at=t(0)
    )


def directory() -> list[BaseModel]:
    units = [
        _unit("620400", CITY, OrgLevel.CITY, "白银市"),
        _unit("620402", D1, OrgLevel.DISTRICT, "白银区"),
        _unit("620403", D2, OrgLevel.DISTRICT, "平川区"),
        _unit("s1", S1, OrgLevel.SCHOOL, "第一小学"),
        _unit("s2", S2, OrgLevel.SCHOOL, "第二小学"),
        _unit("s3", S3, OrgLevel.SCHOOL, "平川中学"),
        _unit("s1g1", S1G1, OrgLevel.GRADE, "一年级"),
        _unit("s2g1", S2G1, OrgLevel.GRADE, "一年级"),
        _unit("s3g1", S3G1, OrgLevel.GRADE, "七年级"),
        _unit("s1c1", S1C1, OrgLevel.CLASS, "一(1)班"),
        _unit("s1c2", S1C2, OrgLevel.CLASS, "一(2)班"),
        _unit("s2c1", S2C1, OrgLevel.CLASS, "一(1)班"),
        _unit("s3c1", S3C1, OrgLevel.CLASS, "七(1)班"),
    ]
    staff: list[BaseModel] = [
        cm.StaffRegistered(staff_id="t1", org_path=S1, roles=[StaffRole.CLASS_TEACHER], occurred_at=t(0))
    ]
    return [*units, *staff]


def _assign(aid: str, teacher: str, family: str, path: str, hour: float = 1) -> vi.AssignmentMade:
    return vi.AssignmentMade(
        assignment_id=aid,
        campaign_id=CAMPAIGN,
        teacher_id=teacher,
        family_id=family,
        student_ids=[f"st-{family}"],
        org_path=path,
        occurred_at=t(hour),
    )


def _visit(
    vid: str,
    a: vi.AssignmentMade,
    mode: VisitMode,
    answers: dict[str, str],
    findings: int,
    day: date,
    hour: float,
    *,
    facts: dict[str, str] | None = None,
    flags: list[str] | None = None,
    topics: list[str] | None = None,
) -> vi.VisitCompleted:
    """A completed visit; `facts` = the requirements as visits stored them (derived ones override `answers`)."""
    return vi.VisitCompleted(
        visit_id=vid,
        campaign_id=CAMPAIGN,
        assignment_id=a.assignment_id,
        teacher_id=a.teacher_id,
        family_id=a.family_id,
        student_ids=a.student_ids,
        org_path=a.org_path,
        mode=mode,
        visited_on=day,
        duration_minutes=45,
        checklist=[vi.ChecklistItemAnswer(item_id=i, answer=vi.ChecklistAnswer(v)) for i, v in answers.items()],
        guidance_topics=topics or ["homework"],
        finding_count=findings,
        occurred_at=t(hour),
        requirements=None
        if facts is None
        else [vi.RequirementFact(item_id=i, answer=vi.ChecklistAnswer(v), derived=i == "i2") for i, v in facts.items()],
        flags=None if flags is None else [vi.RuleFlag(item_id=i, reason="rule broken") for i in flags],
    )


def _finding(fid: str, student: str, v: vi.VisitCompleted, cat: Category, sev: Severity, hour: float) -> Any:
    return vi.FindingRecorded(
        finding_id=fid,
        student_id=student,
        visit_id=v.visit_id,
        campaign_id=CAMPAIGN,
        teacher_id=v.teacher_id,
        category=cat,
        severity=sev,
        org_path=v.org_path,
        visited_on=v.visited_on,
        recorded_at=t(hour),
    )


def campaign() -> list[BaseModel]:
    launched = vi.CampaignLaunched(
        campaign_id=CAMPAIGN,
        name="2026 秋季家访",
        org_path=CITY,
        starts_on=date(2026, 10, 1),
        ends_on=date(2026, 11, 30),
        target_per_teacher=10,
        checklist_version="v1",
        checklist_item_ids=ITEMS,
        occurred_at=t(0.5),
    )
    a1 = _assign("a1", "t1", "f1", S1C1)
    a2 = _assign("a2", "t1", "f2", S1C2)
    a3 = _assign("a3", "t2", "f3", S1C1)
    a4 = _assign("a4", "t3", "f4", S2C1)
    a5 = _assign("a5", "t4", "f5", S3C1)
    a6 = _assign("a6", "t4", "f6", S3C1)
    a7 = _assign("a7", "t2", "f1", S1C2)  # family f1 has children in two classes
    removed = vi.AssignmentChanged(
        assignment_id="a6",
        campaign_id=CAMPAIGN,
        change=vi.AssignmentChange.REMOVED,
        teacher_id="t4",
        previous_teacher_id="t4",
        family_id="f6",
        org_path=S3C1,
        occurred_at=t(2),
    )
    v1 = _visit(
        "v1", a1, VisitMode.IN_HOME, {"i1": "yes", "i2": "no", "i3": "not_applicable"}, 2, DAY1, 10,
        flags=["i2"], topics=["homework", "safety_at_home"],
    )  # fmt: skip
    # Declared i2 yes, but visits derived no (e.g. recorded too late): the fact counts, and the visit is flagged.
    v2 = _visit(
        "v2", a2, VisitMode.ONLINE, {"i1": "yes", "i2": "yes", "i3": "yes"}, 0, DAY1, 11,
        facts={"i1": "yes", "i2": "no", "i3": "yes"}, flags=["i2"],
    )  # fmt: skip
    v3 = vi.VisitMissed(
        visit_id="v3",
        campaign_id=CAMPAIGN,
        assignment_id="a3",
        teacher_id="t2",
        family_id="f3",
        org_path=S1C1,
        reason=vi.MissReason.FAMILY_UNAVAILABLE,
        occurred_at=t(12),
    )
    v4 = _visit("v4", a4, VisitMode.PHONE, {"i1": "no", "i2": "yes"}, 1, DAY2, 13)
    v5 = _visit("v5", a5, VisitMode.IN_HOME, {"i1": "yes"}, 0, DAY2, 14)
    v7 = _visit("v7", a7, VisitMode.AT_SCHOOL, {}, 0, DAY2, 15)
    f1 = _finding("fd1", "st1", v1, Category.LEFT_BEHIND, Severity.HIGH, 10)
    f2 = _finding("fd2", "st2", v1, Category.MENTAL_HEALTH, Severity.LOW, 10)
    f3 = _finding("fd3", "st4", v4, Category.SAFETY_RISK, Severity.URGENT, 13)
    return [launched, a1, a2, a3, a4, a5, a6, a7, removed, v1, v2, v3, v4, v5, v7, f1, f2, f3]


def _case_facts(case_id: str, student: str, path: str, risk: Severity, cats: list[Category], hour: float) -> dict:
    return {
        "case_id": case_id,
        "student_id": student,
        "org_path": path,
        "risk_level": risk,
        "categories": cats,
        "occurred_at": t(hour),
    }


def _referral(cls: type[out.ReferralFacts], rid: str, case: str, dep: Department, cat: Category, hour: float, **kw):
    return cls(
        referral_id=rid,
        case_id=case,
        department=dep,
        category=cat,
        urgency=Severity.HIGH,
        org_path=S1 if case != "k2" else S2,
        occurred_at=t(hour),
        **kw,
    )


def outreach() -> list[BaseModel]:
    k1 = _case_facts("k1", "st1", S1C1, Severity.HIGH, [Category.LEFT_BEHIND], 11)  # 1 h after fd1
    k2 = _case_facts("k2", "st4", S2C1, Severity.URGENT, [Category.SAFETY_RISK], 13.5)  # 0.5 h after fd3
    k3 = _case_facts("k3", "st2", S1C1, Severity.LOW, [Category.MENTAL_HEALTH], 13)  # 3 h after fd2
    return [
        out.CaseOpened(**k1, finding_id="fd1", first_contact_due=t(83), finding_recorded_at=t(10)),
        out.CaseAssigned(**{**k1, "occurred_at": t(11.5)}, carers=[]),
        out.CaseContactLogged(
            **{**k1, "occurred_at": t(13)}, contact_id="c1", mode="home", contacted_at=t(13), first_contact=True
        ),
        out.CaseContactLogged(
            **{**k1, "occurred_at": t(40)}, contact_id="c2", mode="phone", contacted_at=t(40), first_contact=False
        ),
        out.CaseOpened(**k2, finding_id="fd3", first_contact_due=t(37.5), finding_recorded_at=t(13)),
        out.CaseEscalated(
            **{**k2, "occurred_at": t(38)}, overdue=True, escalated_to=S2, reason="overdue", due_at=t(37.5)
        ),
        out.CaseOpened(**k3, finding_id="fd2", first_contact_due=t(13 + 720), finding_recorded_at=t(10)),
        out.CaseContactLogged(
            **{**k3, "occurred_at": t(23)}, contact_id="c3", mode="home", contacted_at=t(23), first_contact=True
        ),
        # Two-person closure: k1's first proposal was rejected, its second waits; k3's was approved (closed).
        out.CaseClosureProposed(
            **{**k1, "occurred_at": t(41)}, proposal_id="p1", reason_code="resolved", proposed_by_role="teacher"
        ),
        out.CaseClosureRejected(**{**k1, "occurred_at": t(42)}, proposal_id="p1", rejected_by_role="school_admin"),
        out.CaseClosureProposed(
            **{**k1, "occurred_at": t(45)}, proposal_id="p2", reason_code="resolved", proposed_by_role="teacher"
        ),
        out.CaseClosureProposed(
            **{**k3, "occurred_at": t(50)}, proposal_id="p3", reason_code="resolved", proposed_by_role="teacher"
        ),
        out.CaseClosed(**{**k3, "occurred_at": t(60)}, reason_code="resolved", approved_by_role="school_admin"),
        _referral(
            out.ReferralRequested, "r1", "k1", Department.CIVIL_AFFAIRS, Category.LEFT_BEHIND, 12, acknowledge_by=t(36)
        ),
        _referral(out.ReferralAcknowledged, "r1", "k1", Department.CIVIL_AFFAIRS, Category.LEFT_BEHIND, 20),
        _referral(
            out.ReferralRequested,
            "r2",
            "k2",
            Department.PUBLIC_SECURITY,
            Category.SAFETY_RISK,
            14,
            acknowledge_by=t(20),
        ),
        out.GroupMembershipRegistered(
            membership_id="m1",
            student_id="st1",
            group=out.SpecialGroup.LEFT_BEHIND,
            source=out.GroupSource.VISIT_FINDING,
            org_path=S1C1,
            occurred_at=t(11),
        ),
        out.GroupMembershipVerified(
            membership_id="m1",
            student_id="st1",
            group=out.SpecialGroup.LEFT_BEHIND,
            verified=True,
            org_path=S1C1,
            occurred_at=t(30),
        ),
        out.GroupMembershipRegistered(
            membership_id="m2",
            student_id="st4",
            group=out.SpecialGroup.FAMILY_HARDSHIP,
            source=out.GroupSource.SCHOOL,
            org_path=S2C1,
            occurred_at=t(11),
        ),
        out.GroupMembershipVerified(
            membership_id="m2",
            student_id="st4",
            group=out.SpecialGroup.FAMILY_HARDSHIP,
            verified=False,
            org_path=S2C1,
            occurred_at=t(31),
        ),
        out.GroupMembershipRegistered(
            membership_id="m3",
            student_id="st9",
            group=out.SpecialGroup.DISABILITY,
            source=out.GroupSource.DIRECTORY_FLAG,
            org_path=S3C1,
            occurred_at=t(11),
        ),
        # Ended (the flag went away): counted nowhere.
        out.GroupMembershipRegistered(
            membership_id="m4",
            student_id="st2",
            group=out.SpecialGroup.LEFT_BEHIND,
            source=out.GroupSource.DIRECTORY_FLAG,
            org_path=S1C1,
            occurred_at=t(11),
        ),
        out.GroupMembershipEnded(
            membership_id="m4",
            student_id="st2",
            group=out.SpecialGroup.LEFT_BEHIND,
            reason=out.GroupEndReason.FLAG_ENDED,
            org_path=S1C1,
            occurred_at=t(40),
        ),
        # Moved from a class of district 2 to one of district 1: counted where the child is now.
        out.GroupMembershipRegistered(
            membership_id="m5",
            student_id="st8",
            group=out.SpecialGroup.DISABILITY,
            source=out.GroupSource.SCHOOL,
            org_path=S3C1,
            occurred_at=t(11),
        ),
        out.GroupMembershipMoved(
            membership_id="m5", student_id="st8", group=out.SpecialGroup.DISABILITY, org_path=S2C1, occurred_at=t(35)
        ),
        # Ended, then registered again: counted.
        out.GroupMembershipRegistered(
            membership_id="m6",
            student_id="st3",
            group=out.SpecialGroup.FAMILY_HARDSHIP,
            source=out.GroupSource.DIRECTORY_FLAG,
            org_path=S1C1,
            occurred_at=t(11),
        ),
        out.GroupMembershipEnded(
            membership_id="m6",
            student_id="st3",
            group=out.SpecialGroup.FAMILY_HARDSHIP,
            reason=out.GroupEndReason.FLAG_ENDED,
            org_path=S1C1,
            occurred_at=t(20),
        ),
        out.GroupMembershipRegistered(
            membership_id="m6",
            student_id="st3",
            group=out.SpecialGroup.FAMILY_HARDSHIP,
            source=out.GroupSource.DIRECTORY_FLAG,
            org_path=S1C1,
            occurred_at=t(45),
        ),
    ]


def cooperation() -> list[BaseModel]:
    def formed(cid: str, uid: str, path: str, level: cm.CommitteeLevel) -> cm.CommitteeFormed:
        return cm.CommitteeFormed(
            committee_id=cid, org_unit_id=uid, org_path=path, level=level, formed_on=DAY1, occurred_at=t(1)
        )

    def attend(guardian: str, attended: bool, hour: float) -> cm.AttendanceRecorded:
        return cm.AttendanceRecorded(
            parent_school_id="ps1",
            session_id="ss1",
            guardian_id=guardian,
            org_path=S1,
            attended=attended,
            occurred_at=t(hour),
        )

    def member(mid: str, role: cm.TeamRole) -> cm.InstructorTeamMemberAdded:
        return cm.InstructorTeamMemberAdded(
            team_id="tm1", member_id=mid, staff_id=None, org_path=S1, role=role, is_lead=False, occurred_at=t(2)
        )

    return [
        formed("cc1", "s1c1", S1C1, cm.CommitteeLevel.CLASS),
        formed("cc2", "s1", S1, cm.CommitteeLevel.SCHOOL),
        formed("cc3", "s3", S3, cm.CommitteeLevel.SCHOOL),
        cm.CommitteeDissolved(committee_id="cc3", org_unit_id="s3", org_path=S3, dissolved_on=DAY2, occurred_at=t(5)),
        formed("cc4", "s2g1", S2G1, cm.CommitteeLevel.GRADE),
        cm.SessionHeld(
            parent_school_id="ps1", session_id="ss1", org_path=S1, held_on=DAY1, enrolled=10, occurred_at=t(3)
        ),
        attend("g1", True, 4),
        attend("g2", True, 4),
        attend("g3", True, 4),
        attend("g4", False, 4),
        attend("g4", True, 5),
        attend("g5", True, 4),
        attend("g5", False, 5),
        cm.InstructorTeamFormed(team_id="tm1", org_path=S1, occurred_at=t(1)),
        member("p1", cm.TeamRole.VICE_PRINCIPAL_IN_CHARGE),
        member("p2", cm.TeamRole.CLASS_TEACHER),
        member("p3", cm.TeamRole.CLASS_TEACHER),
        member("p4", cm.TeamRole.OUTSTANDING_PARENT),
        cm.InstructorTeamMemberRemoved(team_id="tm1", member_id="p4", org_path=S1, occurred_at=t(6)),
        cm.LectureGiven(
            lecture_id="l1",
            lecturer_id="lg1",
            org_path=D1,
            topic=cm.LectureTopic.FAMILY_EDUCATION_PROMOTION_LAW,
            given_on=DAY1,
            audience_org_paths=[S1, S2],
            headcount=120,
            occurred_at=t(7),
        ),
        cm.LectureGiven(
            lecture_id="l2",
            lecturer_id="lg2",
            org_path=CITY,
            topic=cm.LectureTopic.MINISTRY_GUIDANCE,
            given_on=DAY2,
            audience_org_paths=[CITY],
            headcount=80,
            occurred_at=t(8),
        ),
    ]


def all_events() -> list[BaseModel]:
    return [*directory(), *campaign(), *outreach(), *cooperation()]


def envelopes(payloads: list[BaseModel]) -> list[tuple[str, str, bytes]]:
    """(logical topic, key, envelope json) for each payload, with fresh event ids."""
    out_: list[tuple[str, str, bytes]] = []
    for p in payloads:
        spec = registry.spec_for(p)
        env = new_envelope(spec, p, correlation_id=str(uuid.uuid4()), causation_id=None)
        out_.append((spec.topic_for(p), spec.key(p), env.model_dump_json().encode()))
    return out_


def on_read_topics(messages: list[tuple[str, str, bytes]]) -> list[tuple[str, str, bytes]]:
    """The messages on the topics reporting reads (not the directory's: no indicator needs a student's event)."""
    read = set(registry.topics_for(sorted(handlers().types)))
    return [m for m in messages if m[0] in read]


ALL_TOPICS = sorted({t for s in registry.all() if s.service in ("committees", "visits", "outreach") for t in s.topics})


async def ensure_topics(settings: Any) -> None:
    await kafka.ensure_topics(
        settings.kafka_bootstrap_servers,
        [kafka.TopicSpec(settings.topic(t), partitions=3, replication=1) for t in ALL_TOPICS],
    )


async def publish(settings: Any, messages: list[tuple[str, str, bytes]]) -> None:
    """Produce the envelopes to the settings' prefixed topics, in the given order."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for topic, key, value in messages:
            await producer.send(settings.topic(topic), value=value, key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def decode(value: bytes) -> dict[str, Any]:
    return orjson.loads(value)
