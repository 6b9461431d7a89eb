"""Rules of the cooperation structure and of who may see what (pure, no I/O)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from shared import scope
from shared.auth import ADMINS, Principal, Role
from shared.contracts.committees import CommitteeLevel
from shared.contracts.common import OrgLevel

TEACHERS = (Role.TEACHER, Role.MENTAL_HEALTH_TEACHER)
COMMITTEE_LEVELS = {
    OrgLevel.DISTRICT: CommitteeLevel.COUNTY,
    OrgLevel.SCHOOL: CommitteeLevel.SCHOOL,
    OrgLevel.GRADE: CommitteeLevel.GRADE,
    OrgLevel.CLASS: CommitteeLevel.CLASS,
}
PERSONAL_FIELDS = ("name", "student_no", "national_id", "birth_date", "gender", "address", "phone")


class RuleBroken(ValueError):
    """A write that breaks a rule of the domain: `field` names the offending input."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
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


def can_write(principal: Principal, org_path: str) -> bool:
    """Writes: bureau admins anywhere, district and school admins inside their subtree."""
    return principal.has(*ADMINS) and scope.covers(principal, org_path)


def redact(record: dict[str, Any], personal: bool) -> dict[str, Any]:
    """Drop personal fields unless the caller may see them."""
    if personal:
        return record
    return {k: v for k, v in record.items() if k not in PERSONAL_FIELDS}


def encode_cursor(last_id: str) -> str:
    """An opaque cursor for the next page after `last_id`."""
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    """The id a cursor continues after; RuleBroken when it was not made by `encode_cursor`."""
    if not cursor:
        return None
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise RuleBroken("cursor", "is not a cursor returned by this API") from None
