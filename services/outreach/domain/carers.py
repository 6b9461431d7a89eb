"""Who becomes a case's carer: the roles a finding calls for, the candidate pool, and `assign_carers`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.outreach.domain.cases import at_least
from services.outreach.domain.orgs import class_of, org_levels
from services.outreach.settings import Rules
from shared.contracts.committees import TeamRole
from shared.contracts.common import Category, Severity, StaffRole

# Instructor-team roles that make a staff member a possible carer in that role at the team's org unit.
TEAM_ROLE_AS_STAFF_ROLE: dict[str, StaffRole] = {
    TeamRole.VICE_PRINCIPAL_IN_CHARGE: StaffRole.VICE_PRINCIPAL,
    TeamRole.MENTAL_HEALTH_TEACHER: StaffRole.MENTAL_HEALTH_TEACHER,
    TeamRole.IDEOLOGICAL_POLITICAL_TEACHER: StaffRole.IDEOLOGICAL_POLITICAL_TEACHER,
}


@dataclass(frozen=True)
class StaffMember:
    """A staff member as the directory copy knows them."""

    staff_id: str
    roles: frozenset[StaffRole]
    org_path: str
    head_class_id: str | None = None


def staff_member(staff_id: str, roles: Iterable[str], org_path: str, head_class_id: str | None) -> StaffMember:
    """A directory row (staff roles, or an instructor-team role) as the carer roles it stands for."""
    held: set[StaffRole] = set()
    for role in roles:
        if role in TEAM_ROLE_AS_STAFF_ROLE:
            held.add(TEAM_ROLE_AS_STAFF_ROLE[role])
        elif role in StaffRole._value2member_map_:
            held.add(StaffRole(role))
    return StaffMember(staff_id, frozenset(held), org_path, head_class_id)


@dataclass(frozen=True)
class Carer:
    """A chosen carer: who, in which role they were asked for, where they sit."""

    staff_id: str
    role: StaffRole
    org_path: str


def carer_roles(rules: Rules, category: Category, severity: Severity) -> list[StaffRole]:
    """The carer roles a finding calls for, in order."""
    roles = list(rules.category_carer_roles.get(category, rules.default_carer_roles))
    for extra in rules.extra_carers:
        if extra.category == category and at_least(severity, extra.min_severity) and extra.role not in roles:
            roles.append(extra.role)
    return roles


def case_carer_roles(rules: Rules, categories: Iterable[Category], severity: Severity) -> list[StaffRole]:
    """The carer roles a whole case calls for (each category at the case's severity), in order, once each."""
    return list(dict.fromkeys(r for c in categories for r in carer_roles(rules, c, severity)))


@dataclass(frozen=True)
class CandidateQuery:
    """What to fetch from the directory copy to find carers for cases at some class paths."""

    class_ids: list[str]
    levels: list[str]
    roles: list[str]  # staff roles held at a level (class teachers count only for their own class, by head_class_id)
    team_roles: list[str]  # instructor-team roles standing for those roles


def candidate_query(rules: Rules, class_paths: Iterable[str]) -> CandidateQuery:
    """Every candidate any rule could ask for, for cases at these class paths."""
    paths = set(class_paths)
    roles = (
        {*rules.fallback_carer_roles, *rules.default_carer_roles}
        | {r for rs in rules.category_carer_roles.values() for r in rs}
        | {e.role for e in rules.extra_carers}
    ) - {StaffRole.CLASS_TEACHER}
    return CandidateQuery(
        class_ids=sorted({c for p in paths if (c := class_of(p))}),
        levels=sorted({lvl for p in paths for lvl in org_levels(p)}),
        roles=sorted(str(r) for r in roles),
        team_roles=sorted(t for t, s in TEAM_ROLE_AS_STAFF_ROLE.items() if s in roles),
    )


class CandidatePool:
    """Possible carers, by where they sit and by the class they head (each list ordered by staff id: stable)."""

    def __init__(self, staff: Iterable[StaffMember]) -> None:
        self._at: dict[str, list[StaffMember]] = defaultdict(list)
        self._heads: dict[str, list[StaffMember]] = defaultdict(list)
        for s in sorted(staff, key=lambda s: s.staff_id):
            self._at[s.org_path].append(s)
            if s.head_class_id:
                self._heads[s.head_class_id].append(s)

    def head_of(self, class_id: str) -> StaffMember | None:
        """The class's own teacher."""
        heads = self._heads.get(class_id)
        return heads[0] if heads else None

    def holder(self, at: str, role: StaffRole) -> StaffMember | None:
        """The first staff member at a level holding a role."""
        return next((s for s in self._at.get(at, ()) if role in s.roles), None)


@dataclass(frozen=True)
class Candidates:
    """Who could care for one case: the roles it calls for, those it already has, where the child sits, the pool."""

    roles: Sequence[StaffRole]
    held: frozenset[StaffRole]
    class_path: str
    pool: CandidatePool


def choose_carer(rules: Rules, role: StaffRole, class_path: str, pool: CandidatePool) -> Carer | None:
    """The carer for a role: the class's own teacher or the school's role holder; else stand-ins, then up the tree."""
    class_id = class_of(class_path)
    if role == StaffRole.CLASS_TEACHER and class_id:
        head = pool.head_of(class_id)
        if head is not None:
            return Carer(head.staff_id, role, head.org_path)
    # A class teacher is only meaningful for the child's own class; elsewhere look for the stand-ins.
    wanted = [] if role == StaffRole.CLASS_TEACHER else [role]
    for path in org_levels(class_path):
        for r in [*wanted, *rules.fallback_carer_roles]:
            member = pool.holder(path, r)
            if member is not None:
                return Carer(member.staff_id, role, member.org_path)
    return None


def assign_carers(candidates: Candidates, rules: Rules) -> list[Carer]:
    """Carers for each role the case still lacks (one per role; a role nobody can fill is left out, and the case
    stays open and escalates)."""
    out: list[Carer] = []
    for role in candidates.roles:
        if role in candidates.held:
            continue
        carer = choose_carer(rules, role, candidates.class_path, candidates.pool)
        if carer is not None and all((c.staff_id, c.role) != (carer.staff_id, carer.role) for c in out):
            out.append(carer)
    return out


def replacement_carers(
    rules: Rules, lost: Iterable[StaffRole], kept: Iterable[Carer], class_path: str, pool: CandidatePool
) -> list[Carer]:
    """Who takes over the roles a leaving carer held on a case: `assign_carers` (the same rules as a new case)
    for the roles lost that the case's remaining carers do not already cover. The pool never holds leavers."""
    roles = list(dict.fromkeys(lost))
    return assign_carers(Candidates(roles, frozenset(k.role for k in kept), class_path, pool), rules)
