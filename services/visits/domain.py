"""Pure rules of the visits service: assignment generation, visit validation, access. No I/O."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.visits.checklist import ChecklistItem
from services.visits.schemas import VisitIn
from shared import scope
from shared.auth import Principal, Role
from shared.contracts.visits import ChecklistAnswer

# ---------------------------------------------------------------------------------------------- org paths


def school_path(org_path: str) -> str:
    """`/city/district/school/grade/class` → `/city/district/school` (shorter paths are returned as they are)."""
    return "/" + "/".join([p for p in org_path.split("/") if p][:3])


def district_path(org_path: str) -> str:
    """`/city/district/...` → `/city/district`."""
    return "/" + "/".join([p for p in org_path.split("/") if p][:2])


# ---------------------------------------------------------------------------------------- assignment plan


@dataclass(frozen=True)
class StudentPlace:
    """A student in scope: their class and its org path."""

    student_id: str
    class_id: str
    class_path: str


@dataclass(frozen=True)
class Family:
    """A family in scope with its children (in scope) in a stable order."""

    family_id: str
    students: tuple[StudentPlace, ...]

    @property
    def org_path(self) -> str:
        """Placement of the family: the class of its first child."""
        return self.students[0].class_path

    @property
    def schools(self) -> list[str]:
        """The schools its children attend, first child's first."""
        return list(dict.fromkeys(school_path(s.class_path) for s in self.students))


@dataclass(frozen=True)
class Teacher:
    """A teacher who can visit: their school, the class they head and the classes they teach."""

    staff_id: str
    school_path: str
    head_class_id: str | None = None
    class_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Planned:
    """One generated assignment."""

    family_id: str
    teacher_id: str
    student_ids: tuple[str, ...]
    org_path: str


@dataclass
class Plan:
    """The generated assignments and the families no teacher could take (a school without teachers)."""

    assignments: list[Planned] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)

    def loads(self) -> dict[str, int]:
        """Families per teacher."""
        out: dict[str, int] = defaultdict(int)
        for a in self.assignments:
            out[a.teacher_id] += 1
        return dict(out)


class _Loads:
    """Families per teacher, with a lazily updated min-heap per school for 'least loaded teacher'."""

    def __init__(self, teachers: Iterable[Teacher]) -> None:
        self.load: dict[str, int] = {}
        self.heaps: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for t in teachers:
            self.load[t.staff_id] = 0
            self.heaps[t.school_path].append((0, t.staff_id))
        for h in self.heaps.values():
            heapq.heapify(h)

    def add(self, staff_id: str, school: str) -> None:
        self.load[staff_id] += 1
        heapq.heappush(self.heaps[school], (self.load[staff_id], staff_id))

    def least_loaded(self, schools: list[str]) -> tuple[int, str, str] | None:
        """(load, staff_id, school) of the least-loaded teacher of these schools, ties by id."""
        best: tuple[int, str, str] | None = None
        for school in schools:
            h = self.heaps.get(school)
            while h and h[0][0] != self.load[h[0][1]]:
                heapq.heappop(h)  # a stale entry: the teacher got more families since it was pushed
            if h and (best is None or h[0] < best[:2]):
                best = (h[0][0], h[0][1], school)
        return best

    def pick(self, candidates: Iterable[Teacher], cap: int) -> Teacher | None:
        """The least-loaded candidate below `cap` (ties by id), or None."""
        best: Teacher | None = None
        for t in candidates:
            n = self.load[t.staff_id]
            if n < cap and (best is None or (n, t.staff_id) < (self.load[best.staff_id], best.staff_id)):
                best = t
        return best


def generate_assignments(families: Iterable[Family], teachers: Iterable[Teacher], target: int) -> Plan:
    """Give every family in scope exactly one teacher.

    1. Class teachers first: a family goes to the class teacher of one of its children's classes (the least
       loaded of them when its children are in several classes), while that teacher is below `target`.
    2. The rest go to a teacher of the same school who teaches one of the children's classes and is below
       `target`; failing that to the least-loaded teacher of the school. So nobody passes `target` while a
       colleague of the same school is below it, and loads above `target` differ by at most one.
    A family with children in several classes (or schools) is visited once.
    """
    fams = sorted(families, key=lambda f: f.family_id)
    staff = sorted({t.staff_id: t for t in teachers}.values(), key=lambda t: t.staff_id)
    loads = _Loads(staff)
    heads: dict[str, list[Teacher]] = defaultdict(list)
    teaching: dict[str, list[Teacher]] = defaultdict(list)
    for t in staff:
        if t.head_class_id:
            heads[t.head_class_id].append(t)
        for c in t.class_ids:
            teaching[c].append(t)
    plan = Plan()

    def assign(f: Family, t: Teacher) -> None:
        loads.add(t.staff_id, t.school_path)
        plan.assignments.append(Planned(f.family_id, t.staff_id, tuple(s.student_id for s in f.students), f.org_path))

    rest: list[Family] = []
    for f in fams:
        head = loads.pick((h for s in f.students for h in heads.get(s.class_id, ())), target)
        if head is None:
            rest.append(f)
        else:
            assign(f, head)
    # Bigger schools' leftovers first does not matter for fairness; order by school keeps runs local.
    rest.sort(key=lambda f: (f.schools[0], f.family_id))
    for f in rest:
        schools = f.schools
        colleague = loads.pick(
            (x for s in f.students for x in teaching.get(s.class_id, ()) if x.school_path in schools), target
        )
        if colleague is not None:
            assign(f, colleague)
            continue
        least = loads.least_loaded(schools)
        if least is None:
            plan.unassigned.append(f.family_id)
            continue
        _, staff_id, school = least
        loads.add(staff_id, school)
        plan.assignments.append(Planned(f.family_id, staff_id, tuple(s.student_id for s in f.students), f.org_path))
    return plan


# ------------------------------------------------------------------------------------------ visit checks


@dataclass(frozen=True)
class Fault:
    """A broken rule: where (JSON pointer inside the visit) and why; `kind` picks the HTTP status."""

    pointer: str
    detail: str
    kind: str = "invalid"  # invalid → 422, conflict → 409, forbidden → 403, not_found → 404


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


RECORDING_ADMINS = frozenset({Role.SCHOOL_ADMIN, Role.DISTRICT_ADMIN, Role.BUREAU_ADMIN})


def may_record(principal: Principal, a: AssignmentFacts) -> bool:
    """Teachers record their own assignments; school/district/bureau admins those in their subtree."""
    if principal.staff_id is not None and principal.staff_id == a.teacher_id and Role.TEACHER in principal.roles:
        return True
    return not principal.roles.isdisjoint(RECORDING_ADMINS) and scope.covers(principal, a.org_path)


def check_checklist(answers: Sequence[Any], items: tuple[ChecklistItem, ...]) -> list[Fault]:
    """Every item of the version answered exactly once, no unknown items, a note for every 'no'."""
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
    missing = [i.id for i in items if i.id not in seen]
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
