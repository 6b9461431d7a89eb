"""Visit checks: who may record or schedule a visit and every rule a visit record must pass (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.visits.domain.checklist import ChecklistItem
from services.visits.domain.requirements import DERIVED
from services.visits.schemas import VisitIn
from shared import scope, versions
from shared.auth import Principal, Role
from shared.contracts.visits import ChecklistAnswer


@dataclass(frozen=True)
class Fault:
    """A broken rule: where (JSON pointer inside the visit) and why; `kind` picks the HTTP status."""

    pointer: str
    detail: str
    kind: str = "invalid"  # invalid → 422, conflict/stale → 409, forbidden → 403, not_found → 404


@dataclass(frozen=True)
class AssignmentFacts:
    """What a visit is checked against: the assignment, its campaign and the family's current children."""

    assignment_id: str
    campaign_id: str
    teacher_id: str
    family_id: str
    org_path: str
    status: str  # assigned | completed | missed | removed
    campaign_status: str  # draft | launched | closed
    starts_on: date
    ends_on: date
    checklist_version: str
    modes: frozenset[str]
    children: dict[str, str]  # student_id -> class path
    scheduled_visit_id: str | None = None
    version: int = 1  # as locked when the group began: a batch's own earlier items do not make its later ones stale

    def visit_keys(self, visit_id: str) -> dict[str, str]:
        """What a visit of this assignment (recorded or scheduled) is filed under."""
        return {
            "visit_id": visit_id,
            "assignment_id": self.assignment_id,
            "campaign_id": self.campaign_id,
            "teacher_id": self.teacher_id,
            "family_id": self.family_id,
            "org_path": self.org_path,
        }


RECORDING_ADMINS = frozenset({Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.BUREAU_ADMIN})


def may_record(principal: Principal, a: AssignmentFacts) -> bool:
    """Teachers record their own assignments; school/district/bureau admins those in their subtree."""
    if principal.staff_id is not None and principal.staff_id == a.teacher_id and Role.TEACHER in principal.roles:
        return True
    return not principal.roles.isdisjoint(RECORDING_ADMINS) and scope.covers(principal, a.org_path)


def check_checklist(answers: Sequence[Any], items: tuple[ChecklistItem, ...]) -> list[Fault]:
    """Every item of the version answered exactly once (those derived from the record may be left out), no unknown
    items, a note for every 'no'."""
    known = {i.id for i in items}
    seen: set[str] = set()
    faults: list[Fault] = []
    for n, ans in enumerate(answers):
        if ans.item_id not in known:
            faults.append(Fault(f"/checklist/{n}/item_id", f"{ans.item_id!r} is not an item of this checklist"))
        elif ans.item_id in seen:
            faults.append(Fault(f"/checklist/{n}/item_id", f"{ans.item_id!r} is answered twice"))
        seen.add(ans.item_id)
        if ans.answer == ChecklistAnswer.NO and not (ans.note and ans.note.strip()):
            faults.append(Fault(f"/checklist/{n}/note", "a 'no' answer needs a note saying why"))
    missing = [i.id for i in items if i.id not in seen and i.id not in DERIVED]  # derived ones come from the record
    if missing:
        faults.append(Fault("/checklist", f"every item must be answered; missing: {', '.join(missing)}"))
    return faults


def check_findings(findings: Sequence[Any], children: dict[str, str]) -> list[Fault]:
    """Each finding names a child of the family; one finding per child and category."""
    faults: list[Fault] = []
    seen: set[tuple[str, str]] = set()
    for n, f in enumerate(findings):
        if f.student_id not in children:
            faults.append(Fault(f"/findings/{n}/student_id", "not a child of the visited family"))
        elif (f.student_id, f.category) in seen:
            faults.append(Fault(f"/findings/{n}/category", "this child already has a finding of this category"))
        seen.add((f.student_id, f.category))
    return faults


def _open_for_visits(a: AssignmentFacts) -> list[Fault]:
    if a.status == "removed":
        return [Fault("/assignment_id", "the assignment was removed", "conflict")]
    if a.campaign_status != "launched":
        return [Fault("/assignment_id", f"the campaign is {a.campaign_status}, not open for visits", "conflict")]
    if a.status == "completed":
        return [Fault("/assignment_id", "the assignment already has a completed visit", "conflict")]
    return []


def check_version(recorded_against: int | None, a: AssignmentFacts) -> list[Fault]:
    """An offline visit recorded against an older version of its assignment (reassigned, removed, another visit
    recorded since) is a conflict, whatever else it says: the teacher decides again on the current state."""
    if recorded_against is None or not versions.stale(a.version, versions.exactly(recorded_against)):
        return []
    detail = f"the assignment changed since this visit was recorded: it is at version {a.version}"
    return [Fault("/assignment_version", detail, "stale")]


def check_schedule(planned_on: date, mode: str, a: AssignmentFacts) -> list[Fault]:
    """A visit can be planned for an open assignment, inside the campaign, in a mode the campaign accepts."""
    faults = _open_for_visits(a)
    if faults:
        return faults
    if not a.starts_on <= planned_on <= a.ends_on:
        faults.append(Fault("/planned_on", f"must be within the campaign period {a.starts_on}..{a.ends_on}"))
    if mode not in a.modes:
        faults.append(Fault("/mode", f"this campaign accepts only: {', '.join(sorted(a.modes))}"))
    return faults


def check_visit(v: VisitIn, a: AssignmentFacts, items: tuple[ChecklistItem, ...]) -> list[Fault]:
    """Every business rule a visit record must pass, as faults with pointers inside the visit."""
    faults = _open_for_visits(a)
    if faults:
        return faults
    if not a.starts_on <= v.visited_on <= a.ends_on:
        faults.append(Fault("/visited_on", f"must be within the campaign period {a.starts_on}..{a.ends_on}"))
    if v.status == "completed":
        if v.mode is None:
            faults.append(Fault("/mode", "a completed visit needs its mode"))
        elif v.mode not in a.modes:
            faults.append(Fault("/mode", f"this campaign accepts only: {', '.join(sorted(a.modes))}"))
        if v.duration_minutes is None:
            faults.append(Fault("/duration_minutes", "a completed visit needs its duration"))
        if v.miss_reason is not None:
            faults.append(Fault("/miss_reason", "only a missed visit has a miss reason"))
        faults += check_checklist(v.checklist, items)
        faults += check_findings(v.findings, a.children)
    else:
        if v.miss_reason is None:
            faults.append(Fault("/miss_reason", "a missed visit needs a reason"))
        if v.findings:
            faults.append(Fault("/findings", "a missed visit cannot have findings"))
    return faults
