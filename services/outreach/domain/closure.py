"""Closing a case: proposed by one person, decided by a second administrator."""

from __future__ import annotations

from collections.abc import Iterable

from services.outreach.domain.cases import TRANSITIONS as CASE_TRANSITIONS
from services.outreach.domain.cases import Action, CaseState
from services.outreach.settings import Rules
from shared.auth import Role
from shared.contracts.common import Vocabulary

CARER_ROLES = (Role.TEACHER, Role.MENTAL_HEALTH_TEACHER)


class ClosureDecision(Vocabulary):
    """What the second person decided about a proposed closure."""

    APPROVED = "approved", "同意结案", "Approved"
    REJECTED = "rejected", "不同意结案", "Rejected"


def closure_proposal_refusal(state: CaseState, pending: bool) -> str | None:
    """Why a closure cannot be proposed now (None: it can)."""
    if state not in CASE_TRANSITIONS[Action.CLOSE]:
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


def acting_role(roles: Iterable[Role]) -> str:
    """The role a proposer acts in: their highest administrative role, else their teaching role."""
    held = set(roles)
    order = [Role.BUREAU_ADMIN, Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, *CARER_ROLES]
    return next((str(x) for x in order if x in held), "unknown")
