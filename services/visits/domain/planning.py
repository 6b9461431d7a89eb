"""Assignment planning: which teacher visits which family (pure, no I/O)."""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import NamedTuple

# ---------------------------------------------------------------------------------------------- campaigns

PERIOD = "the campaign's last day: not before starts_on"


def period_ok(starts_on: date, ends_on: date) -> bool:
    """A campaign runs from its first day to its last, which is not before the first."""
    return starts_on <= ends_on


# What a campaign in each state allows: draft → launched → closed, and its assignments change only while launched.
CAMPAIGN_STEPS = {
    "launch": ("draft", "only a draft can be launched"),
    "close": ("launched", "only a launched campaign can be closed"),
    "assign": ("launched", "assignments change only while it is launched"),
}


def campaign_refuses(status: str, step: str) -> str | None:
    """Why a campaign in `status` refuses `step` (launch, close, assign: a change of its assignments), or None."""
    needed, reason = CAMPAIGN_STEPS[step]
    return None if status == needed else f"the campaign is {status}; {reason}"


# ---------------------------------------------------------------------------------------------- org paths


# Cached: a launch asks for the school of the same few thousand class paths hundreds of thousands of times.
@lru_cache(maxsize=65536)
def school_path(org_path: str) -> str:
    """`/city/district/school/grade/class` → `/city/district/school` (shorter paths are returned as they are)."""
    return "/" + "/".join([p for p in org_path.split("/") if p][:3])


@lru_cache(maxsize=65536)
def district_path(org_path: str) -> str:
    """`/city/district/...` → `/city/district`."""
    return "/" + "/".join([p for p in org_path.split("/") if p][:2])


# ---------------------------------------------------------------------------------------- assignment plan


# Tuples, not dataclasses: a city-wide launch makes one of each per family (184,000), and a frozen dataclass's
# constructor costs several times a tuple's.
class StudentPlace(NamedTuple):
    """A student in scope: their class and its org path."""

    student_id: str
    class_id: str
    class_path: str


class Family(NamedTuple):
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


class Teacher(NamedTuple):
    """A teacher who can visit: their school, the class they head and the classes they teach."""

    staff_id: str
    school_path: str
    head_class_id: str | None = None
    class_ids: frozenset[str] = frozenset()


class Planned(NamedTuple):
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

    def __init__(self, teachers: Iterable[Teacher], start: Mapping[str, int]) -> None:
        self.load: dict[str, int] = {}
        self.heaps: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for t in teachers:
            self.load[t.staff_id] = start.get(t.staff_id, 0)
            self.heaps[t.school_path].append((self.load[t.staff_id], t.staff_id))
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


def planning_groups(students: Mapping[str, int], links: Iterable[Iterable[str]], size: int) -> dict[str, int]:
    """School → the group it is planned in, so that a launch plans one group at a time (`students`: the students in
    scope per school; `links`: schools that must be planned together, the schools of a family with children in
    several, and a teacher's school with the school of the class they head). Groups are runs of whole linked sets of
    schools in school order, each closed once it holds `size` students or more.

    Planning group by group gives the whole scope's plan: `generate_assignments` gives a family to the head of one
    of its children's classes, or to a teacher of one of its children's schools, and reads only those teachers'
    loads; a group holds every such school of each of its families, and families keep their order within it."""
    parent: dict[str, str] = {school: school for school in students}

    def root(school: str) -> str:
        parent.setdefault(school, school)
        while parent[school] != school:
            parent[school] = parent[parent[school]]
            school = parent[school]
        return school

    for linked in links:
        first, *rest = linked
        for other in rest:
            a, b = root(first), root(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[str, list[str]] = defaultdict(list)
    for school in sorted(parent):
        members[root(school)].append(school)
    groups: dict[str, int] = {}
    group, held = 0, 0
    for schools in members.values():  # in the order of each set's first school
        if held >= size:
            group, held = group + 1, 0
        for school in schools:
            groups[school] = group
            held += students.get(school, 0)
    return groups


def generate_assignments(
    families: Iterable[Family], teachers: Iterable[Teacher], target: int, loads: Mapping[str, int] | None = None
) -> Plan:
    """Give every family in scope exactly one teacher (`loads`: families the teachers already have, when families
    are handed over in a running campaign, e.g. a leaver's).

    1. Class teachers first: a family goes to the class teacher of one of its children's classes (the least
       loaded of them when its children are in several classes), while that teacher is below `target`.
    2. The rest go to a teacher of the same school who teaches one of the children's classes and is below
       `target`; failing that to the least-loaded teacher of the school. So nobody passes `target` while a
       colleague of the same school is below it, and loads above `target` differ by at most one.
    A family with children in several classes (or schools) is visited once.
    """
    fams = sorted(families, key=lambda f: f.family_id)
    staff = sorted({t.staff_id: t for t in teachers}.values(), key=lambda t: t.staff_id)
    loads_now = _Loads(staff, loads or {})
    heads: dict[str, list[Teacher]] = defaultdict(list)
    teaching: dict[str, list[Teacher]] = defaultdict(list)
    for t in staff:
        if t.head_class_id:
            heads[t.head_class_id].append(t)
        for c in t.class_ids:
            teaching[c].append(t)
    plan = Plan()

    def assign(f: Family, t: Teacher) -> None:
        loads_now.add(t.staff_id, t.school_path)
        plan.assignments.append(Planned(f.family_id, t.staff_id, tuple(s.student_id for s in f.students), f.org_path))

    rest: list[tuple[list[str], Family]] = []
    for f in fams:
        head = loads_now.pick((h for s in f.students for h in heads.get(s.class_id, ())), target)
        if head is None:
            rest.append((f.schools, f))
        else:
            assign(f, head)
    # Bigger schools' leftovers first does not matter for fairness; order by school keeps runs local.
    rest.sort(key=lambda sf: (sf[0][0], sf[1].family_id))
    for schools, f in rest:
        colleague = loads_now.pick(
            (x for s in f.students for x in teaching.get(s.class_id, ()) if x.school_path in schools), target
        )
        if colleague is not None:
            assign(f, colleague)
            continue
        least = loads_now.least_loaded(schools)
        if least is None:
            plan.unassigned.append(f.family_id)
            continue
        _, staff_id, school = least
        loads_now.add(staff_id, school)
        plan.assignments.append(Planned(f.family_id, staff_id, tuple(s.student_id for s in f.students), f.org_path))
    return plan
