"""Events published by visits: campaigns, assignments, visits and findings (no names or addresses)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from shared.contracts.common import Category, Severity, VisitMode, Vocabulary
from shared.events import Payload, event_type

CAMPAIGN = "visits.campaign.events"
ASSIGNMENT = "visits.assignment.events"
VISIT = "visits.visit.events"
FINDING = "visits.finding.events"


@event_type("visits.campaign.launched.v1", topic=CAMPAIGN, key="campaign_id")
class CampaignLaunched(Payload):
    """A home-visit campaign was launched for an org subtree."""

    campaign_id: str
    name: str
    org_path: str = Field(description="scope of the campaign")
    starts_on: date
    ends_on: date
    target_per_teacher: int
    checklist_version: str
    checklist_item_ids: list[str]
    occurred_at: datetime


@event_type("visits.campaign.closed.v1", topic=CAMPAIGN, key="campaign_id")
class CampaignClosed(Payload):
    """A campaign was closed."""

    campaign_id: str
    org_path: str
    occurred_at: datetime


@event_type("visits.assignment.made.v1", topic=ASSIGNMENT, key="assignment_id")
class AssignmentMade(Payload):
    """A teacher was assigned to visit a family."""

    assignment_id: str
    campaign_id: str
    teacher_id: str
    family_id: str
    student_ids: list[str]
    org_path: str = Field(description="class of the family's first student in scope")
    occurred_at: datetime


class AssignmentChange(Vocabulary):
    """What happened to an assignment."""

    REASSIGNED = "reassigned", "改派", "Reassigned"
    REMOVED = "removed", "撤销", "Removed"


@event_type("visits.assignment.changed.v1", topic=ASSIGNMENT, key="assignment_id")
class AssignmentChanged(Payload):
    """An assignment was reassigned to another teacher or removed."""

    assignment_id: str
    campaign_id: str
    change: AssignmentChange
    teacher_id: str
    previous_teacher_id: str
    family_id: str
    org_path: str
    occurred_at: datetime


class ChecklistAnswer(Vocabulary):
    """An answer to a checklist item."""

    YES = "yes", "是", "Yes"
    NO = "no", "否", "No"
    NOT_APPLICABLE = "not_applicable", "不适用", "Not applicable"


class ChecklistItemAnswer(BaseModel):
    """One checklist item's answer (the free-text note stays in the visits service)."""

    item_id: str
    answer: ChecklistAnswer


class RequirementFact(BaseModel):
    """One of the Ten Requirements for a visit as a fact: derived from the record (recording delay, participants)
    or as the teacher declared it."""

    item_id: str
    answer: ChecklistAnswer
    derived: bool


class RuleFlag(BaseModel):
    """A mandatory requirement the visit breaks, with a reason built from the rule (never from notes)."""

    item_id: str
    reason: str


class VisitOf(Payload):
    """The visit an event is about: of which assignment and campaign, by which teacher, to which family."""

    visit_id: str
    campaign_id: str
    assignment_id: str
    teacher_id: str
    family_id: str


@event_type("visits.visit.completed.v1", topic=VISIT, key="visit_id")
class VisitCompleted(VisitOf):
    """A home visit took place and was recorded."""

    student_ids: list[str]
    org_path: str
    mode: VisitMode
    visited_on: date
    duration_minutes: int
    checklist: list[ChecklistItemAnswer]
    guidance_topics: list[str] = Field(description="codes of shared.contracts.common.GuidanceTopic")
    finding_count: int
    occurred_at: datetime
    visited_at: datetime | None = Field(default=None, description="when the visit took place, if the teacher said")
    recorded_at: datetime | None = Field(default=None, description="when the visit was recorded")
    requirements: list[RequirementFact] | None = Field(
        default=None, description="every requirement's answer as stored (derived ones worked out by visits)"
    )
    flags: list[RuleFlag] | None = Field(
        default=None, description="mandatory requirements broken: the visit is stored and flagged, not refused"
    )


class MissReason(Vocabulary):
    """Why a visit did not happen."""

    FAMILY_UNAVAILABLE = "family_unavailable", "家长不在家或无法联系", "Family unavailable"
    FAMILY_DECLINED = "family_declined", "家长拒绝家访", "Family declined"
    TEACHER_UNAVAILABLE = "teacher_unavailable", "教师无法前往", "Teacher unavailable"
    OTHER = "other", "其他原因", "Other"


@event_type("visits.visit.missed.v1", topic=VISIT, key="visit_id")
class VisitMissed(VisitOf):
    """A scheduled visit did not take place."""

    org_path: str
    reason: MissReason
    occurred_at: datetime


@event_type("visits.finding.recorded.v1", topic=FINDING, key="student_id", subject="finding_id")
class FindingRecorded(Payload):
    """A teacher recorded a finding about a child during a visit (keyed by student for per-child order)."""

    finding_id: str
    student_id: str
    visit_id: str
    campaign_id: str
    teacher_id: str
    category: Category
    severity: Severity
    org_path: str = Field(description="path of the student's class")
    visited_on: date
    recorded_at: datetime
