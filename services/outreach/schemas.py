"""HTTP request and response models of the outreach API (no names or contact details: pseudonymous ids only)."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.outreach.domain.cases import CONTACT_TIME, REVIEW_TIME, CaseState, CaseStep, CloseReason, Effect
from services.outreach.domain.closure import ClosureDecision
from services.outreach.domain.referrals import ReferralState
from shared.auth import Role
from shared.contracts.common import (
    Category,
    Department,
    LivingArrangement,
    Severity,
    StaffRole,
    VisitMode,
)
from shared.contracts.outreach import GroupSource, NotificationKind, SpecialGroup

ORG_PATH = r"^/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"


class Strict(BaseModel):
    """Request bodies refuse unknown fields."""

    model_config = ConfigDict(extra="forbid")


class CaseQuery(BaseModel):
    """The case list's query: whose cases (the caller's subtree or `org_path` in it; a carer's own with `mine`) and
    the filters; absent filters do not narrow."""

    org_path: str | None = None
    state: CaseState | None = None
    risk_level: Severity | None = None
    overdue: bool | None = None
    student_id: str | None = None
    mine: bool = False
    closure_pending: bool | None = None


class MemberQuery(BaseModel):
    """The register list's query: the caller's subtree or `org_path` in it, and the filters."""

    org_path: str | None = None
    group: SpecialGroup | None = None
    verified: bool | None = None
    include_ended: bool = False


class ReferralQuery(BaseModel):
    """The referral list's query: the caller's subtree or `org_path` in it, and the state."""

    org_path: str | None = None
    state: ReferralState | None = None


class CarerOut(BaseModel):
    staff_id: str
    role: StaffRole
    org_path: str
    assigned_at: datetime


class CaseSummary(BaseModel):
    """A case in lists."""

    case_id: str
    student_id: str
    org_path: str
    state: CaseState
    risk_level: Severity
    categories: list[Category]
    opened_at: datetime
    reopened_at: datetime | None
    contact_due: datetime | None
    first_contacted_at: datetime | None
    next_review_at: datetime | None
    overdue: bool
    escalation_level: int
    escalated_to: str | None
    closed_at: datetime | None
    closure_pending: bool = Field(default=False, description="a proposed closure waits for a second person")
    version: int = Field(description="the case's version (its ETag): `If-Match` on state changes and closure")


class FindingOut(BaseModel):
    finding_id: str
    visit_id: str
    teacher_id: str
    category: Category
    severity: Severity
    recorded_at: datetime
    effect: Effect


class ContactOut(BaseModel):
    contact_id: str
    contacted_at: datetime
    mode: VisitMode
    staff_id: str | None
    outcome: str
    next_review_at: datetime | None


class EscalationOut(BaseModel):
    level: int
    escalated_to: str
    reason: str
    due_at: datetime
    escalated_at: datetime


class ReferralOut(BaseModel):
    referral_id: str
    case_id: str
    department: Department
    category: Category
    urgency: Severity
    org_path: str
    state: ReferralState
    requested_at: datetime
    acknowledge_by: datetime
    resolve_by: datetime | None = Field(
        default=None, description="accepted: when it must be resolved before it is chased up the org tree"
    )
    escalation_level: int
    escalated_to: str | None
    updated_at: datetime
    version: int = Field(description="the referral's version (its ETag): `If-Match` on its answers")


class ClosureProposalOut(BaseModel):
    """A proposed closure waiting for a second person's approval."""

    proposal_id: str
    reason_code: CloseReason
    note: str | None
    proposed_by_role: Role
    proposed_at: datetime


class CaseDetail(CaseSummary):
    """A case with its follow-up plan: findings, carers, contacts, escalations and referrals."""

    close_reason: str | None
    closed_by_role: str | None
    pending_closure: ClosureProposalOut | None
    carers: list[CarerOut]
    findings: list[FindingOut]
    contacts: list[ContactOut]
    escalations: list[EscalationOut]
    referrals: list[ReferralOut]


class ContactIn(Strict):
    """A follow-up contact with the child or family."""

    contacted_at: AwareDatetime = Field(description=CONTACT_TIME)
    mode: VisitMode
    outcome: str = Field(min_length=1, max_length=2000, description="what was agreed; no names or contact details")
    next_review_at: AwareDatetime | None = Field(default=None, description=REVIEW_TIME)


class StateIn(Strict):
    """Move a case along: in_progress or monitoring (closing has its own endpoint)."""

    state: CaseStep


class CloseIn(Strict):
    """Propose closing a case: a reason code and an optional note; a second person approves."""

    reason_code: CloseReason
    note: str | None = Field(default=None, max_length=2000)


class ClosureDecisionIn(Strict):
    """An administrator's approval or rejection of a proposed closure, with an optional note (kept here only)."""

    note: str | None = Field(default=None, max_length=2000)


class ContactLogged(BaseModel):
    """The answer to a logged contact."""

    contact_id: str
    case_id: str
    first_contact: bool = Field(description="whether this was the case's first contact (it met the deadline)")
    next_review_at: datetime = Field(description="the case's next review: escalated when it passes without a contact")


class StateChanged(BaseModel):
    """The answer to a state change."""

    case_id: str
    state: CaseStep
    version: int = Field(description="the case's version after the change (its ETag)")


class ClosureProposed(BaseModel):
    """The answer to a proposal: it now waits for a second person."""

    case_id: str
    proposal_id: str
    state: CaseState
    reason_code: CloseReason
    proposed_by_role: Role
    proposed_at: datetime


class ClosureDecided(BaseModel):
    """The answer to a decision: the case closed (approved) or still open (rejected)."""

    case_id: str
    proposal_id: str
    decision: ClosureDecision
    state: CaseState
    decided_by_role: Role
    proposed_by_role: Role


class ReferralIn(Strict):
    """Ask a department for help with a case."""

    department: Department
    category: Category
    urgency: Severity | None = None


class ReferralNoteIn(Strict):
    """A department's answer, with a note kept only in outreach."""

    note: str | None = Field(default=None, max_length=2000)


class ChildFacts(BaseModel):
    """What a department needs about the child: a pseudonymous id and placement, never a name or address; of the
    register only the group the referral is about (other groups and categories are not the department's business)."""

    student_id: str
    class_path: str
    school_path: str
    living_arrangement: LivingArrangement | None
    groups: list[SpecialGroup]


class ReferralCaseFacts(BaseModel):
    """The case as far as the referral goes: its state, deadlines and the school contacts (its carers)."""

    case_id: str
    state: CaseState
    opened_at: datetime
    contact_due: datetime | None
    first_contacted_at: datetime | None
    carers: list[CarerOut]


class ReferralNote(BaseModel):
    at: datetime
    state: str
    by: str
    note: str | None


class ReferralDetail(ReferralOut):
    """A referral with the child and case facts (an audited read)."""

    child: ChildFacts
    case: ReferralCaseFacts
    notes: list[ReferralNote]


class MembershipIn(Strict):
    """Manual entry in the special-group register by a school or department."""

    student_id: str = Field(min_length=1, max_length=64)
    group: SpecialGroup
    org_path: str | None = Field(
        default=None,
        pattern=ORG_PATH,
        max_length=300,
        description="the student's class path; taken from the directory (a different one is refused)",
    )


class VerifyIn(Strict):
    verified: bool


class MembershipOut(BaseModel):
    membership_id: str
    student_id: str
    group: SpecialGroup
    source: GroupSource
    org_path: str
    verified: bool | None
    verified_at: datetime | None
    verified_by: str | None
    registered_at: datetime
    ended_at: datetime | None
    version: int = Field(description="the membership's version (its ETag): `If-Match` on verify")


class GroupCount(BaseModel):
    group: SpecialGroup
    members: int = Field(description="current members of the group in the subtree")
    verified: int = Field(description="of them, verified by a department")


class GroupCounts(BaseModel):
    """Current members per special group under an org subtree (groups without members are left out). A whole
    collection, never paged: `{items}` like every list of this API, without `next_cursor`."""

    org_path: str = Field(description="the subtree counted: `org_path` of the request, or the caller's own")
    items: list[GroupCount]


class ReferralsRequested(BaseModel):
    """The referrals a manual request opened for the case."""

    case_id: str
    items: list[ReferralOut]


class NotificationOut(BaseModel):
    """One notification of the caller's inbox: what happened and what to open (no child data)."""

    notification_id: str
    kind: NotificationKind
    case_id: str
    referral_id: str | None
    link: str = Field(description="API path of the case or referral (its own access rules apply)")
    created_at: datetime
    read_at: datetime | None


class EmailIn(Strict):
    """The caller's own address for notification mails."""

    # No control characters either (the kit refuses them in any text; this pattern must say so itself).
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$")


class EmailOut(BaseModel):
    staff_id: str
    email: str
    updated_at: datetime
