"""The one projection definition: each contract event becomes a list of fact operations (pure, no I/O).

An operation is `(op_name, row)`; the store merges rows into the fact tables with order-independent rules,
both for the live inbox consumer (one event at a time) and for the bulk rebuild (thousands at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel

from shared.contracts import committees as cm
from shared.contracts import outreach as out
from shared.contracts import visits as vi
from shared.contracts.common import school_of
from shared.events import type_of

Op = tuple[str, tuple[Any, ...]]
SEP = "\x1f"  # joins checklist item ids into one text column (item ids never contain it)

# Tie-breaks for "last writer by occurred_at": at equal times the later stage of a lifecycle wins.
ASSIGNMENT_RANK = {"made": 0, vi.AssignmentChange.REASSIGNED: 1, vi.AssignmentChange.REMOVED: 2}
VISIT_RANK = {"missed": 0, "completed": 1}
REFERRAL_RANK = {"requested": 0, "acknowledged": 1, "escalated": 2, "accepted": 3, "declined": 3, "resolved": 4}
COMMITTEE_LEVEL_TO_ORG = {"county": "district", "school": "school", "grade": "grade", "class": "class"}

# Column order of each operation's row (the store's SQL uses the same order).
OP_COLUMNS: dict[str, tuple[str, ...]] = {
    "org_unit": ("org_unit_id", "org_path", "level", "name", "occurred_at"),
    "campaign": (
        "campaign_id",
        "name",
        "org_path",
        "starts_on",
        "ends_on",
        "target_per_teacher",
        "checklist_items",
        "occurred_at",
        "closed_at",
    ),
    "assignment": (
        "assignment_id",
        "campaign_id",
        "teacher_id",
        "family_id",
        "org_path",
        "active",
        "occurred_at",
        "rank",
    ),
    "visit": (
        "visit_id",
        "campaign_id",
        "assignment_id",
        "teacher_id",
        "family_id",
        "org_path",
        "status",
        "mode",
        "visited_on",
        "yes_items",
        "no_items",
        "flag_items",
        "guidance_topics",
        "occurred_at",
        "rank",
    ),
    "finding": (
        "finding_id",
        "student_id",
        "visit_id",
        "campaign_id",
        "category",
        "severity",
        "org_path",
        "visited_on",
        "recorded_at",
    ),
    "membership": (
        "membership_id",
        "student_id",
        "grp",
        "org_path",
        "path_at",
        "verified",
        "verified_at",
        "registered_at",
        "ended_at",
    ),
    "case": (
        "case_id",
        "student_id",
        "org_path",
        "path_at",
        "finding_id",
        "finding_recorded_at",
        "opened_at",
        "first_contact_due",
        "due_at",
        "first_contact_at",
        "state",
        "state_at",
        "overdue",
        "overdue_at",
    ),
    "referral": ("referral_id", "case_id", "department", "category", "org_path", "state", "state_rank", "state_at"),
    "committee": ("committee_id", "org_unit_id", "org_path", "level", "active", "state_at", "rank"),
    "session": ("session_id", "parent_school_id", "org_path", "held_on", "enrolled", "occurred_at"),
    "attendance": ("session_id", "guardian_id", "org_path", "attended", "occurred_at", "online"),
    "team": ("team_id", "org_path", "occurred_at"),
    "team_member": ("team_id", "member_id", "org_path", "role", "active", "occurred_at"),
    "lecture": ("lecture_id", "org_path", "topic", "headcount", "given_on", "lecturer_id", "audience_units"),
    "lecturer": ("lecturer_id", "org_path", "active", "occurred_at"),
    "case_closure": ("case_id", "proposed_at", "settled_at"),
    # Bookkeeping for the incremental refresh (ignored by a full rebuild, which refreshes everything): the leaves
    # whose figures are recomputed per leaf (cases, referrals, closures, memberships, committees; the other facts'
    # changes are logged by the store; the teachers and families whose corrections are redone are found in those
    # logs).
    "dirty_leaf": ("path",),
}
BOOKKEEPING = frozenset({"dirty_leaf"})


def _dirty(*paths: str | None) -> list[Op]:
    if len(paths) == 1:  # nearly every event: no dict for one path (a replay projects millions)
        return [("dirty_leaf", (paths[0],))] if paths[0] else []
    return [("dirty_leaf", (p,)) for p in dict.fromkeys(paths) if p]


def _school_path(path: str) -> str | None:
    """The school-level prefix of a path (referrals are placed at school level)."""
    if school_of(path) is None:
        return None
    return "/" + "/".join([p for p in path.split("/") if p][:3])


def _org_unit(p: cm.OrgUnitRegistered) -> list[Op]:
    return [("org_unit", (p.org_unit_id, p.org_path, p.level.value, p.name, p.occurred_at))]


def _campaign(p: vi.CampaignLaunched) -> list[Op]:
    row = (
        p.campaign_id,
        p.name,
        p.org_path,
        p.starts_on,
        p.ends_on,
        p.target_per_teacher,
        SEP.join(p.checklist_item_ids),
        p.occurred_at,
        None,
    )
    return [("campaign", row)]


def _campaign_closed(p: vi.CampaignClosed) -> list[Op]:
    return [("campaign", (p.campaign_id, None, p.org_path, None, None, None, None, None, p.occurred_at))]


def _assignment_row(p: vi.AssignmentMade | vi.AssignmentChanged, active: bool, rank: int) -> list[Op]:
    """An assignment's row (made, reassigned or removed: the later by occurred_at, then `rank`, wins)."""
    row = (p.assignment_id, p.campaign_id, p.teacher_id, p.family_id, p.org_path, active, p.occurred_at, rank)
    return [("assignment", row)]


def _assignment(p: vi.AssignmentMade) -> list[Op]:
    return _assignment_row(p, True, ASSIGNMENT_RANK["made"])


def _assignment_changed(p: vi.AssignmentChanged) -> list[Op]:
    return _assignment_row(p, p.change != vi.AssignmentChange.REMOVED, ASSIGNMENT_RANK[p.change])


def _visit(
    p: vi.VisitCompleted | vi.VisitMissed, status: str, mode: str | None, visited_on: date | None, facts: list[str]
) -> list[Op]:
    """A visit's row (completed or missed: the later state wins by occurred_at, then rank) and what it dirties;
    `facts` = its yes, no and flagged requirement ids and its guidance topics, each joined by SEP."""
    row = (
        p.visit_id,
        p.campaign_id,
        p.assignment_id,
        p.teacher_id,
        p.family_id,
        p.org_path,
        status,
        mode,
        visited_on,
        *facts,
        p.occurred_at,
        VISIT_RANK[status],
    )
    return [("visit", row)]


def _visit_completed(p: vi.VisitCompleted) -> list[Op]:
    # The requirements as visits stored them (derived ones worked out from the record); older events: as answered.
    answers = p.requirements if p.requirements is not None else p.checklist
    yes = [a.item_id for a in answers if a.answer == vi.ChecklistAnswer.YES]
    no = [a.item_id for a in answers if a.answer == vi.ChecklistAnswer.NO]
    flags = dict.fromkeys(f.item_id for f in p.flags or [])
    facts = [SEP.join(yes), SEP.join(no), SEP.join(flags), SEP.join(dict.fromkeys(p.guidance_topics))]
    return _visit(p, "completed", p.mode.value, p.visited_on, facts)


def _visit_missed(p: vi.VisitMissed) -> list[Op]:
    return _visit(p, "missed", None, None, ["", "", "", ""])


def _finding(p: vi.FindingRecorded) -> list[Op]:
    row = (
        p.finding_id,
        p.student_id,
        p.visit_id,
        p.campaign_id,
        p.category.value,
        p.severity.value,
        p.org_path,
        p.visited_on,
        p.recorded_at,
    )
    # A case or referral may have arrived first: their leaves must pick up the finding's campaign.
    return [("finding", row), *_dirty(p.org_path, _school_path(p.org_path))]


def _group_registered(p: out.GroupMembershipRegistered) -> list[Op]:
    row = (p.membership_id, p.student_id, p.group.value, p.org_path, p.occurred_at, None, None, p.occurred_at, None)
    return [("membership", row), *_dirty(p.org_path)]


def _group_verified(p: out.GroupMembershipVerified) -> list[Op]:
    row = (p.membership_id, p.student_id, p.group.value, p.org_path, p.occurred_at, p.verified, p.occurred_at)
    return [("membership", (*row, None, None)), *_dirty(p.org_path)]


def _group_moved(p: out.GroupMembershipMoved) -> list[Op]:
    row = (p.membership_id, p.student_id, p.group.value, p.org_path, p.occurred_at, None, None, None, None)
    return [("membership", row), *_dirty(p.org_path)]


def _group_ended(p: out.GroupMembershipEnded) -> list[Op]:
    row = (p.membership_id, p.student_id, p.group.value, p.org_path, p.occurred_at, None, None, None, p.occurred_at)
    return [("membership", row), *_dirty(p.org_path)]


def _case_row(
    p: out.CaseFacts,
    *,
    finding_id: str | None = None,
    finding_recorded_at: datetime | None = None,
    opened_at: datetime | None = None,
    first_contact_due: datetime | None = None,
    first_contact_at: datetime | None = None,
    state: str | None = None,
) -> list[Op]:
    row = (
        p.case_id,
        p.student_id,
        p.org_path,
        p.occurred_at,
        finding_id,
        finding_recorded_at,
        opened_at,
        first_contact_due,
        p.occurred_at if first_contact_due else None,
        first_contact_at,
        state,
        p.occurred_at,
        p.overdue,  # outreach's decision (the contract's one definition of overdue); None in older events
        p.occurred_at if p.overdue is not None else None,
    )
    return [("case", row), *_dirty(p.org_path, _school_path(p.org_path))]


def _case_opened(p: out.CaseOpened) -> list[Op]:
    return _case_row(
        p,
        finding_id=p.finding_id,
        finding_recorded_at=p.finding_recorded_at,
        opened_at=p.occurred_at,
        first_contact_due=p.first_contact_due,
        state="open",
    )


def _case_joined(p: out.CaseJoined) -> list[Op]:
    return _case_row(p, first_contact_due=p.first_contact_due)


def _case_reopened(p: out.CaseReopened) -> list[Op]:
    return _case_row(p, first_contact_due=p.first_contact_due, state="open")


def _case_touched(p: out.CaseFacts) -> list[Op]:
    return _case_row(p)


def _case_contact(p: out.CaseContactLogged) -> list[Op]:
    return _case_row(p, first_contact_at=p.contacted_at)


def _case_closed(p: out.CaseClosed) -> list[Op]:
    return [*_case_row(p, state="closed"), ("case_closure", (p.case_id, None, p.occurred_at))]


def _closure_proposed(p: out.CaseClosureProposed) -> list[Op]:
    return [("case_closure", (p.case_id, p.occurred_at, None)), *_dirty(p.org_path)]


def _closure_rejected(p: out.CaseClosureRejected) -> list[Op]:
    return [("case_closure", (p.case_id, None, p.occurred_at)), *_dirty(p.org_path)]


def _referral(state: str) -> Callable[[out.ReferralFacts], list[Op]]:
    def project(p: out.ReferralFacts) -> list[Op]:
        row = (
            p.referral_id,
            p.case_id,
            p.department.value,
            p.category.value,
            p.org_path,
            state,
            REFERRAL_RANK[state],
            p.occurred_at,
        )
        return [("referral", row), *_dirty(p.org_path)]

    return project


def _committee_formed(p: cm.CommitteeFormed) -> list[Op]:
    level = COMMITTEE_LEVEL_TO_ORG[p.level.value]
    return [
        ("committee", (p.committee_id, p.org_unit_id, p.org_path, level, True, p.occurred_at, 0)),
        *_dirty(p.org_path),
    ]


def _committee_dissolved(p: cm.CommitteeDissolved) -> list[Op]:
    return [
        ("committee", (p.committee_id, p.org_unit_id, p.org_path, None, False, p.occurred_at, 1)),
        *_dirty(p.org_path),
    ]


def _session_held(p: cm.SessionHeld) -> list[Op]:
    row = (p.session_id, p.parent_school_id, p.org_path, p.held_on, p.enrolled, p.occurred_at)
    return [("session", row)]


def _attendance(p: cm.AttendanceRecorded) -> list[Op]:
    row = (p.session_id, p.guardian_id, p.org_path, p.attended, p.occurred_at, p.online)
    return [("attendance", row)]


def _team(p: cm.InstructorTeamFormed) -> list[Op]:
    return [("team", (p.team_id, p.org_path, p.occurred_at))]


def _team_member_added(p: cm.InstructorTeamMemberAdded) -> list[Op]:
    row = (p.team_id, p.member_id, p.org_path, p.role.value, True, p.occurred_at)
    return [("team_member", row)]


def _team_member_removed(p: cm.InstructorTeamMemberRemoved) -> list[Op]:
    return [("team_member", (p.team_id, p.member_id, p.org_path, None, False, p.occurred_at))]


def _lecture(p: cm.LectureGiven) -> list[Op]:
    row = (p.lecture_id, p.org_path, p.topic.value, p.headcount, p.given_on, p.lecturer_id, len(p.audience_org_paths))
    return [("lecture", row)]


def _lecturer_joined(p: cm.LecturerJoined) -> list[Op]:
    return [("lecturer", (p.lecturer_id, p.org_path, True, p.occurred_at))]


def _lecturer_left(p: cm.LecturerLeft) -> list[Op]:
    return [("lecturer", (p.lecturer_id, p.org_path, False, p.occurred_at))]


def _nothing(_: BaseModel) -> list[Op]:
    """Not needed by any indicator: not read at all (see `USED`)."""
    return []


PROJECTIONS: dict[str, Callable[[Any], list[Op]]] = {
    type_of(cm.OrgUnitRegistered): _org_unit,
    type_of(cm.OrgUnitChanged): _org_unit,
    type_of(cm.StaffRegistered): _nothing,
    type_of(cm.StaffChanged): _nothing,
    type_of(cm.StaffLeft): _nothing,
    type_of(cm.StudentRegistered): _nothing,
    type_of(cm.StudentChanged): _nothing,
    type_of(cm.StudentLeft): _nothing,
    # Reporting keeps no student facts: what it counts per child (cases, special groups) follows the survivor
    # through outreach's events of the merge (the duplicate's case closed as merged, its memberships re-registered).
    type_of(cm.StudentMerged): _nothing,
    type_of(cm.FamilyRegistered): _nothing,
    type_of(cm.FamilyChanged): _nothing,
    type_of(cm.CommitteeFormed): _committee_formed,
    type_of(cm.CommitteeDissolved): _committee_dissolved,
    type_of(cm.CommitteeMemberJoined): _nothing,
    type_of(cm.CommitteeMemberLeft): _nothing,
    type_of(cm.ParentSchoolEstablished): _nothing,
    type_of(cm.SessionScheduled): _nothing,
    type_of(cm.SessionHeld): _session_held,
    type_of(cm.AttendanceRecorded): _attendance,
    type_of(cm.InstructorTeamFormed): _team,
    type_of(cm.InstructorTeamMemberAdded): _team_member_added,
    type_of(cm.InstructorTeamMemberRemoved): _team_member_removed,
    type_of(cm.LectureGiven): _lecture,
    type_of(cm.LecturerJoined): _lecturer_joined,
    type_of(cm.LecturerLeft): _lecturer_left,
    type_of(vi.CampaignLaunched): _campaign,
    type_of(vi.CampaignClosed): _campaign_closed,
    type_of(vi.AssignmentMade): _assignment,
    type_of(vi.AssignmentChanged): _assignment_changed,
    type_of(vi.VisitCompleted): _visit_completed,
    type_of(vi.VisitMissed): _visit_missed,
    type_of(vi.FindingRecorded): _finding,
    type_of(out.GroupMembershipRegistered): _group_registered,
    type_of(out.GroupMembershipVerified): _group_verified,
    type_of(out.GroupMembershipMoved): _group_moved,
    type_of(out.GroupMembershipEnded): _group_ended,
    type_of(out.CaseOpened): _case_opened,
    type_of(out.CaseJoined): _case_joined,
    type_of(out.CaseReopened): _case_reopened,
    type_of(out.CaseAssigned): _case_touched,
    type_of(out.CaseContactLogged): _case_contact,
    type_of(out.CaseEscalated): _case_touched,
    type_of(out.CaseClosed): _case_closed,
    type_of(out.CaseClosureProposed): _closure_proposed,
    type_of(out.CaseClosureRejected): _closure_rejected,
    type_of(out.ReferralRequested): _referral("requested"),
    type_of(out.ReferralAcknowledged): _referral("acknowledged"),
    type_of(out.ReferralAccepted): _referral("accepted"),
    type_of(out.ReferralDeclined): _referral("declined"),
    type_of(out.ReferralResolved): _referral("resolved"),
    type_of(out.ReferralEscalated): _referral("escalated"),
}


# The types no indicator needs (most of a city's events: its directory): a replay need not even parse them.
UNUSED = frozenset(t for t, f in PROJECTIONS.items() if f is _nothing)
# The types the projection reads. The group subscribes to their topics only: the student, family and staff topics
# (the city's directory, 580,000 events at an import) carry none of them, and the few unused types on a topic it
# reads are skipped by their header, unparsed and with no inbox row.
USED = frozenset(PROJECTIONS) - UNUSED


def project(event_type: str, payload: BaseModel) -> list[Op]:
    """The fact operations one event implies (empty for types no indicator needs)."""
    return PROJECTIONS[event_type](payload)
