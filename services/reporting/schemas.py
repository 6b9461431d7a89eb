"""Response models of the reporting API: the documents its routes answer (see usecases/views.py, domain/figures.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.auth import Role
from shared.contracts.committees import LectureTopic, TeamRole
from shared.contracts.common import (
    Category,
    Department,
    GuidanceTopic,
    OrgLevel,
    Severity,
    VisitMode,
    Vocabulary,
)
from shared.contracts.outreach import ReferralStatus, SpecialGroup


class UnitLevel(Vocabulary):
    """The levels of org units below the city."""

    DISTRICT = OrgLevel.DISTRICT
    SCHOOL = OrgLevel.SCHOOL
    GRADE = OrgLevel.GRADE
    CLASS = OrgLevel.CLASS


class ShareLevel(Vocabulary):
    """The levels of org units that have parent committees."""

    SCHOOL = OrgLevel.SCHOOL
    GRADE = OrgLevel.GRADE
    CLASS = OrgLevel.CLASS


class ExportTable(Vocabulary):
    """The API's tables that export."""

    SUMMARY = "summary", "指标汇总", "Summary"
    CHILDREN = "children", "下级单位", "Child units"
    SERIES = "series", "时间序列", "Series"
    FINDINGS = "findings", "家访发现", "Findings"
    CHECKLIST = "checklist", "家访要求落实", "Checklist"
    REFERRALS = "referrals", "部门转介", "Referrals"


class ExportFormat(Vocabulary):
    """The file formats of an export."""

    CSV = "csv", "CSV 文件", "CSV"
    XLSX = "xlsx", "Excel 表格", "Excel"


class Teachers(BaseModel):
    assigned: int = Field(description="teachers with at least one assignment")
    active: int = Field(description="teachers who recorded at least one visit")


class Families(BaseModel):
    assigned: int
    visited: int
    coverage: float | None = Field(description="visited / assigned; null when none is assigned")


class Visits(BaseModel):
    completed: int
    missed: int
    by_mode: dict[VisitMode, int]


class ChecklistItem(BaseModel):
    yes: int
    answered: int
    compliance: float | None = Field(description="yes / answered; null when none was answered")


class Requirements(BaseModel):
    """The Ten Requirements as visits checked them: visits flagged for breaking a mandatory requirement."""

    flagged_visits: int = Field(description="completed visits that broke a mandatory requirement (stored, flagged)")
    flagged_share: float | None = Field(description="flagged / completed visits; null when none was completed")
    flags_by_item: dict[str, int] = Field(description="flags by requirement id (e.g. record_within_48h)")


class Findings(BaseModel):
    total: int
    by_category: dict[Category, int]
    by_severity: dict[Severity, int]
    by_category_severity: dict[Category, dict[Severity, int]]


class Hours(BaseModel):
    """Median and 90th percentile (interpolated, as PostgreSQL's percentile_cont) of the cases' hours, each case's
    hours counted to three significant digits and at most two decimals (at most 0.005 h or 0.5 % off); null when no
    case has the measure."""

    median: float | None
    p90: float | None


class Cases(BaseModel):
    opened: int
    open: int
    closed: int
    overdue: int
    closure_pending: int
    finding_to_case_hours: Hours
    case_to_first_contact_hours: Hours


class AttendanceChannels(BaseModel):
    online: int = Field(description="attending guardians the online platform reported")
    in_person: int
    unknown: int = Field(description="attendance recorded before the channel was")


class Attendance(BaseModel):
    enrolled: int
    attended: int
    rate: float | None
    by_channel: AttendanceChannels
    online_share: float | None = Field(description="online / (online + in person) of attending guardians")


class Lectures(BaseModel):
    lectures: int
    audience: int


class Reach(BaseModel):
    lectures: int
    audience: int = Field(description="head-count of the lectures' audiences")
    org_units: int = Field(description="audience org units, summed over lectures")


class LecturerGroup(BaseModel):
    members: int = Field(description="current members of the lecturer groups in the unit")
    lecturers_lecturing: int = Field(description="lecturers who gave at least one lecture")
    top_lecturers: dict[str, int] = Field(
        description="lectures of the 20 lecturers with the most, by lecturer id, most first (ties by id)"
    )
    reach: Reach


class Structure(BaseModel):
    org_units: dict[UnitLevel, int]
    units_with_active_committee: dict[UnitLevel, int]
    committee_share: dict[ShareLevel, float | None]
    active_committees: int
    sessions_held: int
    attendance: Attendance
    instructor_teams: int
    team_members_by_role: dict[TeamRole, int]
    lectures_by_topic: dict[LectureTopic, Lectures]
    lecturer_group: LecturerGroup


class Figures(BaseModel):
    """The indicators of one org unit and campaign."""

    teachers: Teachers
    families: Families
    assignments: int
    visits: Visits
    checklist: dict[str, ChecklistItem] = Field(
        description="by checklist item id (the Ten Requirements; derived ones as visits worked them out)"
    )
    requirements: Requirements
    guidance_topics: dict[GuidanceTopic, int] = Field(description="completed visits that gave guidance on each topic")
    findings: Findings
    special_groups: dict[SpecialGroup, int]
    cases: Cases
    referrals: dict[Department, dict[ReferralStatus, int]]
    structure: Structure


class Summary(BaseModel):
    """An org unit's figures for a campaign (all campaigns when `campaign_id` is null)."""

    org_path: str
    name: str
    level: OrgLevel | Literal["unit"] = Field(description="`unit` for a path the directory does not know")
    campaign_id: str | None
    figures: Figures


class Children(BaseModel):
    """An org unit's figures and each child unit's."""

    model_config = ConfigDict(populate_by_name=True)

    org_path: str
    campaign_id: str | None
    self_: Summary = Field(alias="self")
    children: list[Summary]


class Day(BaseModel):
    day: date
    visits: int
    findings: int
    cases_opened: int
    cases_closed: int


class Series(BaseModel):
    """Per-day counts of an org unit and campaign, oldest day first."""

    org_path: str
    campaign_id: str | None
    days: list[Day]


class CampaignOut(BaseModel):
    """A campaign as seen on the visits topics."""

    campaign_id: str
    name: str | None
    org_path: str
    starts_on: date | None
    ends_on: date | None
    target_per_teacher: int | None
    checklist_item_ids: list[str] | None
    closed_at: datetime | None


class Me(BaseModel):
    """The caller as the token says."""

    org_path: str
    roles: list[Role]


class TeacherBehind(BaseModel):
    """A teacher behind the campaign's plan (ids only: reporting holds no names)."""

    teacher_id: str
    school_path: str
    assigned: int = Field(description="families assigned to the teacher in this campaign")
    completed: int = Field(description="visits completed")
    expected: int = Field(description="visits expected completed by today (even progress over the campaign's days)")
    behind_by: int


class TeachersBehind(BaseModel):
    """The teachers of a campaign inside an org unit who are behind schedule today, furthest behind first."""

    campaign_id: str
    org_path: str
    today: date
    starts_on: date
    ends_on: date
    behind: int = Field(description="how many teachers are behind (the list holds at most `limit`)")
    teachers: list[TeacherBehind]
