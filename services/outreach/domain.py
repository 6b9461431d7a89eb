"""Pure outreach rules: which findings open cases, risk, deadlines, carers, escalation, referrals, closure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.outreach.settings import Rules
from shared.auth import Role
from shared.contracts.common import SEVERITY_ORDER, Category, Department, Severity, StaffRole
from shared.contracts.outreach import SpecialGroup

SEVERITIES = sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__)


class CaseState(StrEnum):
    """Life cycle of a care case."""

    OPEN = "open"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    MONITORING = "monitoring"
    CLOSED = "closed"


class ReferralState(StrEnum):
    """Life cycle of a referral to a department."""

    REQUESTED = "requested"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    RESOLVED = "resolved"


# Transitions a user may ask for explicitly (opening, assignment and closing have their own paths).
CASE_TRANSITIONS: dict[CaseState, set[CaseState]] = {
    CaseState.OPEN: {CaseState.IN_PROGRESS},
    CaseState.ASSIGNED: {CaseState.IN_PROGRESS},
    CaseState.IN_PROGRESS: {CaseState.MONITORING},
    CaseState.MONITORING: {CaseState.IN_PROGRESS},
    CaseState.CLOSED: set(),
}

REFERRAL_TRANSITIONS: dict[ReferralState, set[ReferralState]] = {
    ReferralState.REQUESTED: {ReferralState.ACKNOWLEDGED},
    ReferralState.ACKNOWLEDGED: {ReferralState.ACCEPTED, ReferralState.DECLINED},
    ReferralState.ACCEPTED: {ReferralState.RESOLVED},
    ReferralState.DECLINED: set(),
    ReferralState.RESOLVED: set(),
}
OPEN_REFERRAL_STATES = (ReferralState.REQUESTED, ReferralState.ACKNOWLEDGED, ReferralState.ACCEPTED)

MAX_ESCALATION_LEVEL = 2  # 0 = school, 1 = district, 2 = city


def at_least(severity: Severity, minimum: Severity) -> bool:
    """Whether `severity` is `minimum` or worse."""
    return SEVERITY_ORDER[severity] >= SEVERITY_ORDER[minimum]


def max_severity(severities: Iterable[Severity]) -> Severity:
    """The worst of some severities (low when there are none)."""
    return max(severities, key=SEVERITY_ORDER.__getitem__, default=Severity.LOW)


def opens_case(rules: Rules, category: Category, severity: Severity) -> bool:
    """A finding opens (or reopens) a case when it is about a special group or severe enough."""
    return category in rules.special_group_categories or at_least(severity, rules.open_case_min_severity)


def special_group(rules: Rules, category: Category) -> SpecialGroup | None:
    """The register group a finding category enters the child in, if any."""
    if category not in rules.special_group_categories:
        return None
    try:
        return SpecialGroup(category.value)
    except ValueError:
        return None  # a configured category without a register group of its own


def referred_groups(rules: Rules, referral_categories: Iterable[str]) -> set[SpecialGroup]:
    """The register groups some referrals are about: all a department may register, verify or see of a child."""
    return {g for c in referral_categories if (g := special_group(rules, Category(c))) is not None}


def risk_level(rules: Rules, severities: Iterable[Severity], categories: Iterable[Category]) -> Severity:
    """The highest open severity, one level higher when many distinct categories are present (capped at urgent)."""
    level = SEVERITY_ORDER[max_severity(severities)]
    n = rules.risk_raise_category_count
    if n > 0 and len(set(categories)) >= n:
        level = min(level + 1, len(SEVERITIES) - 1)
    return SEVERITIES[level]


def contact_due(rules: Rules, severity: Severity, recorded_at: datetime) -> datetime:
    """When the first contact for a finding of this severity is due (from when it was recorded)."""
    return recorded_at + timedelta(hours=rules.first_contact_hours[severity])


def next_escalation_due(rules: Rules, risk: Severity, now: datetime) -> datetime:
    """When an escalated case that is still not contacted escalates again."""
    hours = rules.escalation_repeat_hours or rules.first_contact_hours[risk]
    return now + timedelta(hours=hours)


def carer_roles(rules: Rules, category: Category, severity: Severity) -> list[StaffRole]:
    """The carer roles a finding calls for, in order."""
    roles = list(rules.category_carer_roles.get(category, rules.default_carer_roles))
    for extra in rules.extra_carers:
        if extra.category == category and at_least(severity, extra.min_severity) and extra.role not in roles:
            roles.append(extra.role)
    return roles


def org_levels(org_path: str) -> list[str]:
    """The school, district and city paths above a class path, nearest first (only those the path has)."""
    parts = [p for p in org_path.split("/") if p]
    return ["/" + "/".join(parts[:n]) for n in (3, 2, 1) if len(parts) >= n]


def school_path(org_path: str) -> str:
    """The path cut at the school (what public events may carry)."""
    parts = [p for p in org_path.split("/") if p]
    return "/" + "/".join(parts[:3])


def class_of(org_path: str) -> str | None:
    """The class id of a class path `/city/district/school/grade/class`."""
    parts = [p for p in org_path.split("/") if p]
    return parts[4] if len(parts) >= 5 else None


def escalation_target(org_path: str, level: int) -> str:
    """The org path responsible at an escalation level: 0 school, 1 district, 2 city."""
    parts = [p for p in org_path.split("/") if p]
    keep = {0: 3, 1: 2, 2: 1}[min(level, MAX_ESCALATION_LEVEL)]
    return "/" + "/".join(parts[: min(keep, len(parts))])


@dataclass(frozen=True)
class StaffMember:
    """A staff member as the directory copy knows them."""

    staff_id: str
    roles: frozenset[StaffRole]
    org_path: str
    head_class_id: str | None = None


@dataclass(frozen=True)
class Carer:
    """A chosen carer: who, in which role they were asked for, where they sit."""

    staff_id: str
    role: StaffRole
    org_path: str


def _pick(staff: list[StaffMember], *, at: str, role: StaffRole) -> StaffMember | None:
    """The first staff member (by id, stable) at a level holding a role."""
    found = sorted((s for s in staff if s.org_path == at and role in s.roles), key=lambda s: s.staff_id)
    return found[0] if found else None


def choose_carer(
    rules: Rules, role: StaffRole, class_id: str | None, case_path: str, staff: list[StaffMember]
) -> Carer | None:
    """The carer for a role: the class's own teacher or the school's role holder; else stand-ins, then up the tree."""
    if role == StaffRole.CLASS_TEACHER and class_id:
        heads = sorted((s for s in staff if s.head_class_id == class_id), key=lambda s: s.staff_id)
        if heads:
            return Carer(heads[0].staff_id, role, heads[0].org_path)
    # A class teacher is only meaningful for the child's own class; elsewhere look for the stand-ins.
    wanted = [] if role == StaffRole.CLASS_TEACHER else [role]
    for path in org_levels(case_path):
        for r in [*wanted, *rules.fallback_carer_roles]:
            member = _pick(staff, at=path, role=r)
            if member is not None:
                return Carer(member.staff_id, role, member.org_path)
    return None


def choose_carers(
    rules: Rules, roles: Iterable[StaffRole], class_id: str | None, case_path: str, staff: list[StaffMember]
) -> list[Carer]:
    """Carers for each role (a role nobody can fill is left out; the case stays open and escalates)."""
    out: list[Carer] = []
    for role in roles:
        carer = choose_carer(rules, role, class_id, case_path, staff)
        if carer is not None and all((c.staff_id, c.role) != (carer.staff_id, carer.role) for c in out):
            out.append(carer)
    return out


def referral_departments(rules: Rules, category: Category, severity: Severity) -> list[Department]:
    """The departments a finding of this category is referred to."""
    if not at_least(severity, rules.referral_min_severity):
        return []
    return list(rules.referral_departments.get(category, []))


# States from which a case may be closed (the closure itself needs a proposal and a second person's approval).
CLOSABLE_STATES = frozenset({CaseState.OPEN, CaseState.ASSIGNED, CaseState.IN_PROGRESS, CaseState.MONITORING})


class ClosureDecision(StrEnum):
    """What the second person decided about a proposed closure."""

    APPROVED = "approved"
    REJECTED = "rejected"


def closure_proposal_refusal(state: CaseState, pending: bool) -> str | None:
    """Why a closure cannot be proposed now (None: it can)."""
    if state not in CLOSABLE_STATES:
        return f"a {state} case cannot be closed"
    if pending:
        return "a closure of this case is already waiting for approval"
    return None


def closure_decision_refusal(
    rules: Rules,
    approver_roles: Iterable[Role],
    approver: str,
    proposer: str,
    approver_staff_id: str | None = None,
    proposer_staff_id: str | None = None,
) -> str | None:
    """Why this caller may not approve or reject a proposed closure (None: they may).

    The decider is a second person: an administrator with a closing role who is not the proposer (neither the
    same token subject nor the same staff member).
    """
    if approver == proposer or (approver_staff_id is not None and approver_staff_id == proposer_staff_id):
        return "the person who proposed the closure cannot decide on it; a second administrator must"
    if not set(approver_roles).intersection(rules.case_closers):
        return "deciding on a closure needs a school, district or bureau administrator"
    return None


def closing_role(rules: Rules, roles: Iterable[Role]) -> str:
    """The closing role a decider acts in (the first of `case_closers` they hold)."""
    held = set(roles)
    return next((str(r) for r in rules.case_closers if r in held), "unknown")


def state_after_assignment(state: CaseState, has_carers: bool) -> CaseState:
    """An open case becomes assigned once it has carers."""
    return CaseState.ASSIGNED if state == CaseState.OPEN and has_carers else state
