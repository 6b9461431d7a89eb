"""Care cases: how a finding changes a child's case (`decide`), the state machine (`transition`), risk, deadlines,
escalation and what "overdue" means."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.outreach.domain.orgs import MAX_ESCALATION_LEVEL, escalation_target
from services.outreach.settings import Rules
from shared.contracts.common import SEVERITY_ORDER, Category, Severity, Vocabulary
from shared.contracts.outreach import CarerAssignment
from shared.contracts.visits import FindingRecorded

SEVERITIES = sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.__getitem__)


class CaseState(Vocabulary):
    """Life cycle of a care case."""

    OPEN = "open", "待分派", "Open"
    ASSIGNED = "assigned", "已分派", "Assigned"
    IN_PROGRESS = "in_progress", "帮扶中", "In progress"
    MONITORING = "monitoring", "持续关注", "Monitoring"
    CLOSED = "closed", "已结案", "Closed"


class CaseStep(Vocabulary):
    """The states a carer may move a case to."""

    IN_PROGRESS = CaseState.IN_PROGRESS
    MONITORING = CaseState.MONITORING


class CloseReason(Vocabulary):
    """Why a case is proposed for closing."""

    RESOLVED = "resolved", "问题已解决", "Resolved"
    NEEDS_MET_BY_DEPARTMENT = "needs_met_by_department", "已由相关部门保障", "Needs met by a department"
    MOVED_AWAY = "moved_away", "已转学或迁出", "Moved away"
    NO_LONGER_AT_RISK = "no_longer_at_risk", "风险已消除", "No longer at risk"
    OTHER = "other", "其他原因", "Other"


class Action(StrEnum):
    """What happens to a case; `transition` says which state it leads to."""

    OPEN = "open"  # a qualifying finding about a child without a case to join or reopen
    REOPEN = "reopen"  # a qualifying finding soon after the child's case was closed
    ASSIGN = "assign"  # the case has carers
    CONTACT = "contact"  # a contact with the child or family was logged
    START = "start"  # a carer marks the case in progress
    MONITOR = "monitor"  # a carer moves the case to monitoring
    CLOSE = "close"  # a second person approved the proposed closure
    ESCALATE = "escalate"  # the first-contact (or escalation) deadline passed with no contact logged


_WORKING = (CaseState.OPEN, CaseState.ASSIGNED, CaseState.IN_PROGRESS, CaseState.MONITORING)

# Every allowed (state before, action) → state after; None before = no case yet. Anything else is refused.
TRANSITIONS: dict[Action, dict[CaseState | None, CaseState]] = {
    Action.OPEN: {None: CaseState.OPEN},
    Action.REOPEN: {CaseState.CLOSED: CaseState.OPEN},
    Action.ASSIGN: {s: CaseState.ASSIGNED if s == CaseState.OPEN else s for s in _WORKING},
    Action.CONTACT: {s: CaseState.IN_PROGRESS if s in (CaseState.OPEN, CaseState.ASSIGNED) else s for s in _WORKING},
    Action.START: {s: CaseState.IN_PROGRESS for s in _WORKING if s != CaseState.IN_PROGRESS},
    Action.MONITOR: {CaseState.IN_PROGRESS: CaseState.MONITORING},
    Action.CLOSE: dict.fromkeys(_WORKING, CaseState.CLOSED),
    Action.ESCALATE: {s: s for s in _WORKING},
}

# The states a user may ask for by hand (`POST /cases/{id}/state`), and the action each one is.
REQUESTED_STATES: dict[CaseState, Action] = {CaseState.IN_PROGRESS: Action.START, CaseState.MONITORING: Action.MONITOR}


class TransitionRefused(ValueError):
    """An action that is not allowed in the case's current state."""

    def __init__(self, state: CaseState | None, action: Action) -> None:
        self.state, self.action = state, action
        if action == Action.CLOSE:
            reason = f"a {state} case cannot be closed"
        elif action in REQUESTED_STATES.values():
            wanted = next(s for s, a in REQUESTED_STATES.items() if a == action)
            reason = f"a case cannot go from {state} to {wanted}"
        elif state == CaseState.CLOSED:
            reason = "the case is closed"
        else:
            reason = f"a case cannot {action} from {state or 'nothing'}"
        super().__init__(reason)


def transition(state: CaseState | None, action: Action) -> CaseState:
    """The state a case moves to by an action (the one place a case's state changes); refused if not allowed."""
    after = TRANSITIONS[action].get(state)
    if after is None:
        raise TransitionRefused(state, action)
    return after


def at_least(severity: Severity, minimum: Severity) -> bool:
    """Whether `severity` is `minimum` or worse."""
    return SEVERITY_ORDER[severity] >= SEVERITY_ORDER[minimum]


def max_severity(severities: Iterable[Severity]) -> Severity:
    """The worst of some severities (low when there are none)."""
    return max(severities, key=SEVERITY_ORDER.__getitem__, default=Severity.LOW)


def opens_case(rules: Rules, category: Category, severity: Severity) -> bool:
    """A finding opens (or reopens) a case when it is about a special group or severe enough."""
    return category in rules.special_group_categories or at_least(severity, rules.open_case_min_severity)


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


@dataclass(frozen=True)
class Case:
    """A child's current (or latest closed) case, as far as findings change it. `case_id` "" = not stored yet."""

    case_id: str
    org_path: str
    state: CaseState
    max_severity: Severity
    categories: tuple[Category, ...]
    contact_due: datetime | None = None
    escalation_due: datetime | None = None
    closed_at: datetime | None = None
    finding_recorded_at: datetime | None = None
    overdue: bool = False
    carers: tuple[CarerAssignment, ...] = ()

    def risk(self, rules: Rules) -> Severity:
        return risk_level(rules, [self.max_severity], self.categories)


class Effect(Vocabulary):
    """What a finding did to the child's case (stored with the finding)."""

    OPENED = "opened", "新立个案", "Opened a case"
    JOINED = "joined", "并入已有个案", "Joined the open case"
    REOPENED = "reopened", "重新启动个案", "Reopened the case"
    IGNORED = "ignored", "未立案", "No case"


@dataclass(frozen=True)
class Decision:
    """A finding's effect, the case after it, and the first-contact deadline its event announces."""

    effect: Effect
    case: Case | None
    first_contact_due: datetime | None = None


def _least(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def decide(case: Case | None, finding: FindingRecorded, rules: Rules, now: datetime) -> Decision:
    """How a finding changes the child's case: join the open case, reopen a recently closed one, open a new one
    (case_id ""), or nothing (a minor finding without an open case, or one configured not to join)."""
    qualifies = opens_case(rules, finding.category, finding.severity)
    due = contact_due(rules, finding.severity, finding.recorded_at)
    if case is not None and case.state != CaseState.CLOSED:
        if not qualifies and not rules.join_non_qualifying:
            return Decision(Effect.IGNORED, case)
        joined = replace(
            case,
            categories=case.categories if finding.category in case.categories else (*case.categories, finding.category),
            max_severity=max_severity([case.max_severity, finding.severity]),
            contact_due=_least(case.contact_due, due) if qualifies else case.contact_due,
            escalation_due=_least(case.escalation_due, due) if qualifies else case.escalation_due,
        )
        return Decision(Effect.JOINED, joined, joined.contact_due or due)
    if not qualifies:
        return Decision(Effect.IGNORED, case)
    reopen = (
        case is not None
        and case.closed_at is not None
        and now - case.closed_at <= timedelta(days=rules.reopen_within_days)
    )
    action = Action.REOPEN if reopen else Action.OPEN
    after = Case(
        case_id=case.case_id if reopen and case else "",
        org_path=finding.org_path,
        state=transition(CaseState.CLOSED if reopen else None, action),
        max_severity=finding.severity,
        categories=(finding.category,),
        contact_due=due,
        escalation_due=due,
        finding_recorded_at=finding.recorded_at,
        overdue=overdue_after(action, case.overdue if reopen and case else False),
        carers=case.carers if reopen and case else (),
    )
    return Decision(Effect.REOPENED if reopen else Effect.OPENED, after, due)


OVERDUE_REASON = "first_contact_overdue"
REVIEW_OVERDUE_REASON = "review_overdue"

# Whether a case is overdue after an action (missing: unchanged). The one definition of "overdue": a case becomes
# overdue when it is escalated for a missed first contact or a missed review and stays so until a contact is
# logged, it is closed or it (re)opens. Every case event carries the result as `overdue`
# (shared.contracts.outreach.OVERDUE).
OVERDUE_AFTER: dict[Action, bool] = {
    Action.OPEN: False,
    Action.REOPEN: False,
    Action.ESCALATE: True,
    Action.CONTACT: False,
    Action.CLOSE: False,
}


def overdue_after(action: Action, overdue: bool) -> bool:
    """Whether a case that was (or was not) `overdue` is overdue after `action`."""
    return OVERDUE_AFTER.get(action, overdue)


CLOCK_SKEW = timedelta(minutes=5)  # how far a carer's device clock may run ahead of the server's
CONTACT_TIME = "when the contact took place: not in the future (a device clock 5 minutes ahead is tolerated)"
REVIEW_TIME = "the next review: after `contacted_at`, at the latest the risk level's interval after it (the default)"


def contact_fault(contacted_at: datetime, next_review_at: datetime | None, now: datetime) -> tuple[str, str] | None:
    """What is wrong with a logged contact's times, as (field pointer, reason); None when nothing is. The contact
    has taken place (not later than now, give or take `CLOCK_SKEW`) and its next review, when given, comes after it."""
    if contacted_at > now + CLOCK_SKEW:
        return "/contacted_at", "a contact cannot be in the future"
    if next_review_at is not None and next_review_at <= contacted_at:
        return "/next_review_at", "the next review must come after the contact"
    return None


@dataclass(frozen=True)
class Escalation:
    """One step up the org tree for an overdue case."""

    level: int
    escalated_to: str
    next_due: datetime | None  # when it escalates again (None at the top)
    reason: str = OVERDUE_REASON


def escalate(
    rules: Rules, org_path: str, level: int, risk: Severity, now: datetime, *, contacted: bool = False
) -> Escalation:
    """The next escalation of a case at `level` whose deadline passed: one level up, again later unless at the top.
    The deadline was its first contact's (`contacted` false) or, once contacted, its next review's."""
    up = level + 1
    again = next_escalation_due(rules, risk, now) if up < MAX_ESCALATION_LEVEL else None
    reason = REVIEW_OVERDUE_REASON if contacted else OVERDUE_REASON
    return Escalation(up, escalation_target(org_path, up), again, reason)


def review_due(rules: Rules, risk: Severity, contacted_at: datetime, requested: datetime | None = None) -> datetime:
    """A case's next review after a contact: the carer's date when given, but never later than the risk level's
    interval after the contact (`review_days`). The scheduler escalates the case when it passes without a contact."""
    latest = contacted_at + timedelta(days=rules.review_days[risk])
    return latest if requested is None else min(requested, latest)
