"""HTTP request and response models of the visits API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.visits.domain import planning
from shared.contracts.common import Category, GuidanceTopic, Severity, VisitMode, Vocabulary
from shared.contracts.visits import ChecklistAnswer, MissReason
from shared.problems import FieldError


class VisitStatus(Vocabulary):
    """Whether a visit took place."""

    COMPLETED = "completed", "已完成", "Completed"
    MISSED = "missed", "未完成", "Missed"


class CampaignStatus(Vocabulary):
    """A campaign's life: draft → launched → closed."""

    DRAFT = "draft", "草稿", "Draft"
    LAUNCHED = "launched", "已启动", "Launched"
    CLOSED = "closed", "已结束", "Closed"


class AssignmentStatus(Vocabulary):
    """Where an assignment stands."""

    ASSIGNED = "assigned", "待家访", "Assigned"
    COMPLETED = "completed", "已家访", "Completed"
    MISSED = "missed", "未能家访", "Missed"
    REMOVED = "removed", "已撤销", "Removed"


class ProgressBy(Vocabulary):
    """What a campaign's progress is counted by."""

    TEACHER = "teacher", "按教师", "By teacher"
    CLASS = "class", "按班级", "By class"
    GRADE = "grade", "按年级", "By grade"
    SCHOOL = "school", "按学校", "By school"
    DISTRICT = "district", "按区县", "By district or county"


ORG_PATH = r"^/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"


Short = Annotated[str, Field(min_length=1, max_length=100)]


class Strict(BaseModel):
    """Request models refuse unknown fields (a typo is an error, not silently dropped). NUL, control characters and
    lone surrogates, which PostgreSQL text cannot store, are refused by the kit before any model sees them
    (`shared.edges.refuse_bad_text`), and in an offline batch item by item (`usecases.recording.parse_item`)."""

    model_config = ConfigDict(extra="forbid")


class CampaignIn(Strict):
    """Body of POST /api/v1/campaigns (a draft campaign)."""

    name: str = Field(min_length=1, max_length=200)
    org_path: str = Field(pattern=ORG_PATH, max_length=300, description="scope: an org subtree")
    starts_on: date
    ends_on: date = Field(description=planning.PERIOD)
    target_per_teacher: int | None = Field(default=None, ge=1, le=100)
    required_modes: list[VisitMode] = Field(
        default_factory=lambda: list(VisitMode), min_length=1, description="modes a visit may take"
    )
    checklist_version: str | None = Field(default=None, max_length=32, description="default: the current one")

    @field_validator("ends_on")
    @classmethod
    def _period(cls, ends_on: date, info: ValidationInfo) -> date:
        starts_on = info.data.get("starts_on")  # absent when it was invalid itself
        if starts_on is not None and not planning.period_ok(starts_on, ends_on):
            raise ValueError("must not be before starts_on")
        return ends_on


class ChecklistAnswerIn(Strict):
    """One answered requirement of the Ten Requirements."""

    item_id: str = Field(min_length=1, max_length=64)
    answer: ChecklistAnswer
    note: str | None = Field(default=None, max_length=1000)


class FindingIn(Strict):
    """A finding about one child of the visited family."""

    student_id: str = Field(min_length=1, max_length=64)
    category: Category
    severity: Severity
    note: str | None = Field(default=None, max_length=2000)


class Participants(Strict):
    """Who took part: colleagues who came along and the guardians present."""

    teacher_ids: list[Short] = Field(default_factory=list, max_length=10)
    guardian_ids: list[Short] = Field(default_factory=list, max_length=10)


class VisitIn(Strict):
    """One visit record: completed (with checklist and findings) or missed (with a reason)."""

    assignment_id: str = Field(min_length=1, max_length=64)
    status: VisitStatus
    visited_on: date = Field(description="the day of the visit (or of the missed appointment)")
    visited_at: AwareDatetime | None = Field(
        default=None,
        description="when the visit took place, if known: the 48-hour recording rule counts from it (otherwise from"
        " the end of `visited_on`, local time)",
    )
    mode: VisitMode | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=600)
    participants: Participants = Field(
        default_factory=Participants,
        description="colleagues who came along (an in-home visit is made in pairs) and the guardians present",
    )
    checklist: list[ChecklistAnswerIn] = Field(default_factory=list, max_length=50)
    guidance_topics: list[GuidanceTopic] = Field(
        default_factory=list, max_length=20, description="codes of GET /api/v1/guidance-topics (never free text)"
    )
    # The derived requirements (record_within_48h, visited_in_pairs) may be left out of `checklist`: visits works
    # them out from the record; an answer given for them is kept as the teacher's declaration.
    findings: list[FindingIn] = Field(default_factory=list, max_length=50)
    miss_reason: MissReason | None = None
    note: str | None = Field(default=None, max_length=4000)
    assignment_version: int | None = Field(
        default=None,
        ge=1,
        le=2**53 - 1,  # a JavaScript-safe integer: the bound survives the JSON document as a float exactly
        description="the assignment's `version` the visit was recorded against (offline apps send it): when the "
        "assignment changed since (reassigned, removed, another visit recorded), the visit is not stored and its "
        "batch item comes back as `conflict` with the assignment's current state (a single visit: 409)",
    )


class ScheduleIn(Strict):
    """Body of POST /api/v1/assignments/{id}/schedule: plan (or move) the visit."""

    planned_on: date
    mode: VisitMode
    note: str | None = Field(default=None, max_length=1000)


BATCH_MAX_BYTES = 16 * 1024 * 1024  # 1000 visits with long notes in Chinese


class BatchIn(BaseModel):
    """Body of POST /api/v1/visits/batch: items are validated one by one, so one bad item spoils nothing else."""

    visits: list[Any] = Field(min_length=1, max_length=1000)


class AssignmentIn(Strict):
    """Body of POST /api/v1/campaigns/{id}/assignments (a hand-made assignment)."""

    family_id: str = Field(min_length=1, max_length=64)
    teacher_id: str = Field(min_length=1, max_length=64)


class ReassignIn(Strict):
    """Body of PATCH /api/v1/assignments/{id}."""

    teacher_id: str = Field(min_length=1, max_length=64)


class ChecklistAnswerOut(BaseModel):
    """An answered requirement, labelled in both languages when the checklist version knows it."""

    item_id: str
    answer: str
    note: str | None = None
    zh: str | None = None
    en: str | None = None


class FindingOut(BaseModel):
    finding_id: str
    student_id: str
    category: Category
    severity: Severity
    note: str | None
    org_path: str
    recorded_at: datetime


class RequirementOut(BaseModel):
    """A requirement's answer for a visit: derived from the record (recording delay, participants) or declared."""

    item_id: str
    answer: ChecklistAnswer
    derived: bool


class FlagOut(BaseModel):
    """A mandatory requirement a visit breaks, and why (the visit is stored, not refused)."""

    item_id: str
    reason: str


class VisitOut(BaseModel):
    """A recorded visit with its checklist and findings (notes about the family: an audited read)."""

    visit_id: str
    assignment_id: str
    campaign_id: str
    teacher_id: str
    family_id: str
    org_path: str
    status: str
    mode: str | None
    visited_on: date
    duration_minutes: int | None
    participants: Participants
    checklist: list[ChecklistAnswerOut]
    guidance_topics: list[str]
    miss_reason: str | None
    note: str | None
    recorded_by: str
    recorded_at: datetime
    checklist_version: str
    findings: list[FindingOut]
    visited_at: datetime | None = None
    requirements: list[RequirementOut] = Field(
        default_factory=list, description="each requirement's answer as stored: derived from the record, or declared"
    )
    flags: list[FlagOut] = Field(default_factory=list, description="mandatory requirements this visit breaks")


# ------------------------------------------------------------------------------------------- answers


class Label(BaseModel):
    """A guidance topic: its stable code (the contract's `GuidanceTopic`) and its Chinese and English labels."""

    code: GuidanceTopic
    zh: str
    en: str


class GuidanceTopics(BaseModel):
    """The guidance-topic vocabulary: every code a visit may record, with its labels. A whole collection, never
    paged: `{items}` like every list of this API, without `next_cursor`."""

    items: list[Label]


class ChecklistItemOut(BaseModel):
    """One of the Ten Requirements."""

    id: str
    zh: str
    en: str


class ChecklistOut(BaseModel):
    """A checklist version and its items."""

    version: str
    items: list[ChecklistItemOut]


class CampaignOut(BaseModel):
    """A campaign: its scope, period, target and checklist version, and where it is in its life."""

    campaign_id: str
    name: str
    org_path: str
    starts_on: date
    ends_on: date
    target_per_teacher: int
    required_modes: list[VisitMode]
    checklist_version: str
    status: CampaignStatus
    created_by: str
    created_at: datetime
    launched_at: datetime | None
    closed_at: datetime | None
    version: int = Field(description="the campaign's version (its ETag): `If-Match` on launch and close")
    unassigned_families: int | None = Field(description="families no teacher could take at the launch")


class CampaignDetailOut(CampaignOut):
    """A campaign with its checklist's items."""

    checklist: list[ChecklistItemOut]


class LaunchOut(CampaignOut):
    """A launched campaign and what the launch generated."""

    assignments: int
    teachers: int
    max_per_teacher: int
    unassigned_family_ids: list[str] = Field(description="the first 100 families no teacher could take")


class VisitCounts(BaseModel):
    """Assignments by visit status."""

    assigned: int
    completed: int
    missed: int
    outstanding: int
    scheduled: int


class UnitProgress(VisitCounts):
    """One unit's progress (a teacher, class, grade, school or district) against the campaign's plan."""

    key: str = Field(
        description="the unit: a teacher's staff id, or the org path of the class, grade, school, district"
    )
    org_path: str = Field(description="the unit's org path (a teacher: the school of their assignments)")
    teachers: int
    by_mode: dict[VisitMode, int]
    expected: int = Field(description="visits expected completed by today: even progress over the campaign's days")
    behind: bool = Field(description="fewer visits completed than expected by today")
    behind_by: int


class ProgressOut(BaseModel):
    """A campaign's progress per unit, with the totals and how many units are behind schedule."""

    campaign_id: str
    by: ProgressBy
    today: date
    totals: VisitCounts
    behind: int = Field(description="units behind schedule")
    units: list[UnitProgress]


class AssignmentOut(BaseModel):
    """A family to visit, its teacher, and the visit's plan and status."""

    assignment_id: str
    teacher_id: str
    family_id: str
    student_ids: list[str]
    org_path: str
    status: AssignmentStatus
    planned_on: date | None
    planned_mode: VisitMode | None
    visit_id: str | None
    visit_mode: VisitMode | None
    visited_on: date | None
    updated_at: datetime
    version: int = Field(
        description="the assignment's version (its ETag): `If-Match` on PATCH/DELETE, `assignment_version` of a visit"
    )


class MyCampaignProgress(BaseModel):
    """A teacher's own progress in one launched campaign: done out of target, what is left, against the plan."""

    campaign_id: str
    name: str
    starts_on: date
    ends_on: date
    target: int = Field(description="families assigned to the teacher")
    done: int = Field(description="visits completed")
    missed: int = Field(description="visits missed (still to visit again)")
    left: int = Field(description="families still to visit (target - done)")
    expected: int = Field(description="visits expected completed by today")
    behind: bool


class MyAssignmentsOut(BaseModel):
    """The calling teacher's campaigns with their progress, and the families still to visit (at most 500)."""

    teacher_id: str
    today: date
    campaigns: list[MyCampaignProgress]
    open: list[AssignmentOut]


class AssignmentMadeOut(BaseModel):
    """A hand-made assignment."""

    assignment_id: str
    campaign_id: str
    teacher_id: str
    family_id: str
    student_ids: list[str]
    org_path: str
    status: Literal["assigned"]


class ReassignedOut(BaseModel):
    """An assignment given to another teacher."""

    assignment_id: str
    teacher_id: str
    previous_teacher_id: str
    version: int = Field(description="the assignment's version after the change (its ETag)")


class RemovedOut(BaseModel):
    """A withdrawn assignment."""

    assignment_id: str
    status: Literal["removed"]
    version: int = Field(description="the assignment's version after the change (its ETag)")


class ScheduledOut(BaseModel):
    """The planned visit of an assignment."""

    visit_id: str
    assignment_id: str
    status: Literal["scheduled"]
    planned_on: date
    mode: VisitMode


class VisitRecorded(BaseModel):
    """A stored visit: its id (a scheduled visit keeps its id), its assignment, its status and its findings' ids."""

    visit_id: str
    assignment_id: str
    status: VisitStatus
    finding_ids: list[str]
    assignment_version: int = Field(
        description="the assignment's version after this visit (its ETag; what later visits of it are recorded against)"
    )


class ItemStored(VisitRecorded):
    """A batch item that was stored."""

    index: int
    result: Literal["stored"]


class AssignmentState(BaseModel):
    """An assignment as it is now (what a conflicting offline visit is told; no personal data)."""

    assignment_id: str
    version: int
    status: AssignmentStatus
    may_record: bool = Field(description="whether the caller may still record visits of it (false once reassigned)")


class ItemConflict(BaseModel):
    """A batch item recorded against an older version of its assignment: not stored; the assignment's current
    state, to show the teacher and decide (record again against `current.version`, or drop it)."""

    index: int
    result: Literal["conflict"]
    assignment_id: str
    current: AssignmentState


class ItemRejected(BaseModel):
    """A batch item that was refused, with each field at fault."""

    index: int
    result: Literal["rejected"]
    errors: list[FieldError]


class BatchOut(BaseModel):
    """What happened to each item of a batch, in the batch's order."""

    stored: int
    rejected: int
    conflicts: int = Field(description="items not stored because their assignment changed since they were recorded")
    results: list[Annotated[ItemStored | ItemRejected | ItemConflict, Field(discriminator="result")]]
