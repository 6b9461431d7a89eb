"""Rules of the cooperation structure and of who may see what (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared import scope
from shared.auth import ADMINS, Principal, Role
from shared.contracts.committees import CommitteeLevel, ParentSchoolKind, TeamRole
from shared.contracts.common import OrgLevel

TEACHERS = (Role.TEACHER, Role.MENTAL_HEALTH_TEACHER)
COMMITTEE_LEVELS = {
    OrgLevel.DISTRICT: CommitteeLevel.COUNTY,
    OrgLevel.SCHOOL: CommitteeLevel.SCHOOL,
    OrgLevel.GRADE: CommitteeLevel.GRADE,
    OrgLevel.CLASS: CommitteeLevel.CLASS,
}
PERSONAL_FIELDS = ("name", "student_no", "national_id", "birth_date", "gender", "address", "phone")


PARENT_SCHOOL_LEVELS = {
    ParentSchoolKind.COUNTY: {OrgLevel.DISTRICT},
    ParentSchoolKind.SCHOOL: {OrgLevel.SCHOOL},
    ParentSchoolKind.ONLINE: {OrgLevel.CITY, OrgLevel.DISTRICT, OrgLevel.SCHOOL},
}
TEAM_LEVELS = (OrgLevel.SCHOOL, OrgLevel.DISTRICT)
STAFF_TEAM_ROLES = {
    TeamRole.VICE_PRINCIPAL_IN_CHARGE,
    TeamRole.CLASS_TEACHER,
    TeamRole.MENTAL_HEALTH_TEACHER,
    TeamRole.IDEOLOGICAL_POLITICAL_TEACHER,
}


class RuleBroken(ValueError):
    """A write that breaks a rule of the domain: `field` names the offending input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class Conflict(ValueError):
    """A write that the record's current state refuses (the request itself is well-formed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def committee_level(org_level: str) -> CommitteeLevel:
    """The committee level for an org unit: county, school, grade or class (no city committee)."""
    try:
        return COMMITTEE_LEVELS[OrgLevel(org_level)]
    except (KeyError, ValueError):
        raise RuleBroken("org_unit_id", f"a parent committee cannot be formed at {org_level} level") from None


def check_one_active_committee(active_committee_ids: Iterable[str]) -> None:
    """Only one active committee per org unit."""
    existing = list(active_committee_ids)
    if existing:
        raise RuleBroken("org_unit_id", f"the org unit already has an active committee ({existing[0]})")


def check_dissolve(formed_on: date, dissolved_on: date | None, on: date) -> None:
    """A committee is dissolved once, not before it was formed."""
    if dissolved_on is not None:
        raise Conflict("the committee is already dissolved")
    if on < formed_on:
        raise RuleBroken("dissolved_on", "must not be before formed_on")


def check_active(dissolved_on: date | None) -> None:
    """Members join active committees only."""
    if dissolved_on is not None:
        raise Conflict("the committee is dissolved")


def check_parent_school_unit(kind: ParentSchoolKind, unit_level: str) -> None:
    """County parent schools belong to a county, school ones to a school, online ones to a city, county or school."""
    if unit_level not in PARENT_SCHOOL_LEVELS[kind]:
        raise RuleBroken("org_unit_id", f"a {kind} parent school cannot belong to a {unit_level}")


def check_team_unit(unit_level: str) -> None:
    """Instructor teams belong to a school or a county."""
    if unit_level not in TEAM_LEVELS:
        raise RuleBroken("org_unit_id", "instructor teams belong to a school or a county")


def check_team_member(role: TeamRole, staff_id: str | None, name: str | None) -> None:
    """School roles are held by staff; experts and parents who are not staff are named."""
    if role in STAFF_TEAM_ROLES and not staff_id:
        raise RuleBroken("staff_id", f"a {role} member must be school staff")
    if staff_id is None and not name:
        raise RuleBroken("name", "a member who is not staff needs a name")


def check_team_staff(staff_path: str | None, team_path: str) -> None:
    """A staff member of a team is active (`staff_path` None otherwise) and works inside the team's org unit."""
    if staff_path is None:
        raise RuleBroken("staff_id", "unknown or departed staff member")
    if not scope.within(staff_path, team_path):
        raise RuleBroken("staff_id", "the staff member works outside the team's org unit")


def check_lecturer(staff_id: str | None, name: str | None) -> None:
    """A lecturer who is not staff is named."""
    if staff_id is None and not name:
        raise RuleBroken("name", "a lecturer who is not staff needs a name")


def check_member_eligible(committee_path: str, guardian_student_paths: Iterable[str]) -> None:
    """A member must be a guardian of an (active) student inside the committee's org unit."""
    if not any(scope.within(p, committee_path) for p in guardian_student_paths):
        raise RuleBroken("guardian_id", "the guardian has no student inside the committee's org unit")


def check_term(term_start: date, term_end: date | None) -> None:
    """A term ends after it starts."""
    if term_end is not None and term_end <= term_start:
        raise RuleBroken("term_end", "must be after term_start")


def attendance_rate(attended: int, expected: int) -> float | None:
    """Share of expected guardians who attended, rounded to 4 places; None when nobody was expected."""
    if expected <= 0:
        return None
    return round(min(attended, expected) / expected, 4)


@dataclass(frozen=True)
class Access:
    """What a caller may see of people records inside one org path."""

    read: bool
    personal: bool


def people_access(principal: Principal, org_path: str, class_id: str | None, my_classes: frozenset[str]) -> Access:
    """Admins in scope see everything; teachers their own classes; auditors see records without personal fields."""
    if not scope.covers(principal, org_path):
        return Access(read=False, personal=False)
    if principal.has(*ADMINS):
        return Access(read=True, personal=True)
    if principal.has(*TEACHERS) and class_id is not None and class_id in my_classes:
        return Access(read=True, personal=True)
    if principal.has(Role.AUDITOR):
        return Access(read=True, personal=False)
    return Access(read=False, personal=False)


def staff_view(principal: Principal, row: dict[str, Any]) -> dict[str, Any] | None:
    """A staff record as the caller may see it: admins in scope and colleagues of the same school see everything,
    auditors in scope see no personal fields, others nothing (None)."""
    if principal.has(*ADMINS, *TEACHERS) and scope.covers(principal, row["org_path"]):
        return row
    if principal.has(Role.AUDITOR) and scope.covers(principal, row["org_path"]):
        return redact(row, personal=False)
    return None


def family_scope(student_paths: Iterable[str], registered_by_path: str | None) -> list[str]:
    """The org units a family belongs to: its children's; while it has none, the unit of the admin who registered
    it; an imported family with no child belongs to no unit ([]: bureau admins alone may see or link it)."""
    paths = sorted(set(student_paths))
    if paths:
        return paths
    return [registered_by_path] if registered_by_path else []


def can_write(principal: Principal, org_path: str) -> bool:
    """Writes: bureau admins anywhere, district and school admins inside their subtree."""
    return principal.has(*ADMINS) and scope.covers(principal, org_path)


def redact(record: dict[str, Any], personal: bool) -> dict[str, Any]:
    """Drop personal fields unless the caller may see them."""
    if personal:
        return record
    return {k: v for k, v in record.items() if k not in PERSONAL_FIELDS}
