"""Events published by outreach: special groups, care cases and (public) referrals."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shared.contracts.common import Category, Department, Severity, StaffRole, Vocabulary
from shared.events import Payload, event_type

GROUP = "outreach.group.events"
CASE = "outreach.case.events"
NOTIFICATION = "outreach.notification.events"
# Public: each department reads only its own topic, with its own credentials (deploy/kafka/departments.md).
REFERRAL = "outreach.referral.{department}.events"


def referral_topic(department: Department | str) -> str:
    """The logical topic of one department's referral facts."""
    return REFERRAL.replace("{department}", Department(department).value)


REFERRAL_TOPICS = [referral_topic(d) for d in Department]


class ReferralStatus(Vocabulary):
    """The states of a referral as its events tell them: outreach's referral state machine, and `escalated` for one
    chased past its deadline."""

    REQUESTED = "requested", "待签收", "Requested"
    ACKNOWLEDGED = "acknowledged", "已签收", "Acknowledged"
    ESCALATED = "escalated", "已督办", "Escalated"
    ACCEPTED = "accepted", "已受理", "Accepted"
    DECLINED = "declined", "不予受理", "Declined"
    RESOLVED = "resolved", "已办结", "Resolved"


class SpecialGroup(Vocabulary):
    """Special student groups of the register."""

    LEFT_BEHIND = "left_behind", "留守儿童", "Left-behind children"
    ORPHANED_OR_UNACCOMPANIED = (
        "orphaned_or_unaccompanied",
        "孤儿和事实无人抚养儿童",
        "Orphaned or unaccompanied children",
    )
    DISABILITY = "disability", "残疾儿童", "Disabled children"
    FAMILY_HARDSHIP = "family_hardship", "困境家庭儿童", "Children of families in hardship"


class GroupSource(Vocabulary):
    """Where a group membership came from."""

    VISIT_FINDING = "visit_finding", "家访发现", "Home-visit finding"
    DIRECTORY_FLAG = "directory_flag", "学籍信息标记", "Directory flag"
    SCHOOL = "school", "学校登记", "Registered by the school"
    DEPARTMENT = "department", "部门推送", "Reported by a department"


class GroupMembershipFacts(Payload):
    """The membership of a special group an event is about: whose, and of which group."""

    membership_id: str
    student_id: str
    group: SpecialGroup


@event_type("outreach.group.registered.v1", topic=GROUP, key="student_id")
class GroupMembershipRegistered(GroupMembershipFacts):
    """A student was entered in a special group."""

    source: GroupSource
    org_path: str
    occurred_at: datetime


@event_type("outreach.group.verified.v1", topic=GROUP, key="student_id")
class GroupMembershipVerified(GroupMembershipFacts):
    """A group membership was verified (or rejected) by a school or department."""

    verified: bool
    org_path: str
    occurred_at: datetime


@event_type("outreach.group.moved.v1", topic=GROUP, key="student_id")
class GroupMembershipMoved(GroupMembershipFacts):
    """A member of a special group moved: the membership follows the child to the class they are in now."""

    org_path: str = Field(description="the child's class path now")
    occurred_at: datetime


class GroupEndReason(Vocabulary):
    """Why a membership ended."""

    # the directory no longer says what alone held it (parents back home)
    FLAG_ENDED = "flag_ended", "标记已解除", "Flag ended"


@event_type("outreach.group.ended.v1", topic=GROUP, key="student_id")
class GroupMembershipEnded(GroupMembershipFacts):
    """A membership ended: the child no longer counts in the group (a later registration starts it again)."""

    reason: GroupEndReason
    org_path: str
    occurred_at: datetime


# The one definition of an overdue case, for every service: outreach decides it and states it on each case event.
OVERDUE = (
    "Whether the case is overdue after this event: its first-contact deadline, or once contacted its next review"
    " date, passed with no contact logged (outreach escalates the case at that moment); it stays overdue until a"
    " contact is logged, the case is closed or it is reopened. Subscribers take the latest event's value (by"
    " occurred_at) and never recompute it from deadlines."
    " Absent (null) in events published before the field existed."
)


class CaseFacts(Payload):
    """Common facts of case events."""

    case_id: str
    student_id: str
    org_path: str
    risk_level: Severity
    categories: list[Category]
    occurred_at: datetime
    overdue: bool | None = Field(default=None, description=OVERDUE)


class CaseFinding(CaseFacts):
    """The finding that opened, joined or reopened the case, and the first contact it makes due."""

    finding_id: str
    first_contact_due: datetime


@event_type("outreach.case.opened.v1", topic=CASE, key="student_id")
class CaseOpened(CaseFinding):
    """A care case was opened for a child because of a finding."""

    finding_recorded_at: datetime


@event_type("outreach.case.joined.v1", topic=CASE, key="student_id")
class CaseJoined(CaseFinding):
    """A new finding joined the child's open case."""


@event_type("outreach.case.reopened.v1", topic=CASE, key="student_id")
class CaseReopened(CaseFinding):
    """A closed case was reopened by a new qualifying finding."""


class CarerAssignment(Payload):
    """One carer of a case."""

    staff_id: str
    role: StaffRole
    org_path: str


@event_type("outreach.case.assigned.v1", topic=CASE, key="student_id")
class CaseAssigned(CaseFacts):
    """Carers were assigned to a case. Also published for the surviving case of a merge of two records of one child
    (`student.merged`): its facts carry the case's risk and categories after taking in the duplicate's case, and
    `carers` the duplicate's carers who joined it (possibly none)."""

    carers: list[CarerAssignment]


@event_type("outreach.case.contact_logged.v1", topic=CASE, key="student_id")
class CaseContactLogged(CaseFacts):
    """A follow-up contact with the child or family was logged."""

    contact_id: str
    mode: str
    contacted_at: datetime
    first_contact: bool
    next_review_at: datetime | None = Field(
        default=None,
        description="when the case must next be reviewed (a contact logged) at the latest: the carer's date, never"
        " later than its risk level allows; outreach escalates the case when it passes. Absent in older events.",
    )


@event_type("outreach.case.escalated.v1", topic=CASE, key="student_id")
class CaseEscalated(CaseFacts):
    """An overdue case was escalated one level up the org tree."""

    escalated_to: str = Field(description="org path of the level now responsible")
    reason: str = Field(description="first_contact_overdue | review_overdue: which deadline passed")
    due_at: datetime


@event_type("outreach.case.closure_proposed.v1", topic=CASE, key="student_id")
class CaseClosureProposed(CaseFacts):
    """A carer (or administrator) proposed closing a case; a second person must approve it."""

    proposal_id: str
    reason_code: str
    proposed_by_role: str


@event_type("outreach.case.closure_rejected.v1", topic=CASE, key="student_id")
class CaseClosureRejected(CaseFacts):
    """An administrator rejected a proposed closure; the case stays open."""

    proposal_id: str
    rejected_by_role: str


@event_type("outreach.case.closed.v1", topic=CASE, key="student_id")
class CaseClosed(CaseFacts):
    """A case was closed: a second person (an administrator, not the proposer) approved the proposed closure."""

    reason_code: str
    approved_by_role: str


class ReferralFacts(Payload):
    """Public referral facts: ids, category, urgency and org placement only (no personal data)."""

    referral_id: str
    case_id: str
    department: Department
    category: Category
    urgency: Severity
    org_path: str = Field(description="path of the school (never deeper) the child attends")
    occurred_at: datetime


@event_type("outreach.referral.requested.v1", topic=REFERRAL, key="referral_id", public=True)
class ReferralRequested(ReferralFacts):
    """A department was asked to help with a case."""

    acknowledge_by: datetime


@event_type("outreach.referral.acknowledged.v1", topic=REFERRAL, key="referral_id", public=True)
class ReferralAcknowledged(ReferralFacts):
    """The department acknowledged the referral."""


@event_type("outreach.referral.accepted.v1", topic=REFERRAL, key="referral_id", public=True)
class ReferralAccepted(ReferralFacts):
    """The department accepted the referral."""

    resolve_by: datetime | None = Field(
        default=None, description="when it must be resolved before it is chased up the org tree; absent in older events"
    )


@event_type("outreach.referral.declined.v1", topic=REFERRAL, key="referral_id", public=True)
class ReferralDeclined(ReferralFacts):
    """The department declined the referral."""


@event_type("outreach.referral.resolved.v1", topic=REFERRAL, key="referral_id", public=True)
class ReferralResolved(ReferralFacts):
    """The referral was resolved."""


@event_type("outreach.referral.escalated.v1", topic=REFERRAL, key="referral_id", public=True)
class ReferralEscalated(ReferralFacts):
    """The department did not acknowledge in time, or did not resolve an accepted referral in time (chased); the
    referral was escalated."""

    escalated_to: str
    reason: str | None = Field(
        default=None, description="unacknowledged | unresolved (chased); absent in older events (unacknowledged)"
    )


class NotificationKind(Vocabulary):
    """What a staff member is told about."""

    CASE_ASSIGNED = "case_assigned", "个案已分派", "Case assigned"
    CASE_DUE_SOON = "case_due_soon", "个案即将到期", "Case due soon"
    CASE_ESCALATED = "case_escalated", "个案已升级", "Case escalated"
    REFERRAL_ANSWERED = "referral_answered", "转介已答复", "Referral answered"
    # not acknowledged, or accepted and not resolved (chased), in time
    REFERRAL_ESCALATED = "referral_escalated", "转介已督办", "Referral escalated"


@event_type("outreach.notification.created.v1", topic=NOTIFICATION, key="recipient_id")
class NotificationCreated(Payload):
    """A staff member has a new notification: the topic every delivery channel subscribes to (the in-app inbox
    is its table; outreach's email channel reads this topic; a messaging channel would too). It carries ids, the
    kind and a link only: no child id, name or finding; whoever opens the link is checked there."""

    notification_id: str
    recipient_id: str = Field(description="staff id of the carer or teacher told")
    kind: NotificationKind
    case_id: str
    referral_id: str | None = None
    link: str = Field(description="path of the resource to open (the API checks the reader's access)")
    occurred_at: datetime
