"""HTTP models of the committees API (field rules shared with imports live in domain.rows)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.committees import LectureTopic, MemberRole, ParentSchoolKind, TeamRole
from shared.contracts.common import LivingArrangement, OrgLevel, SchoolType, StaffRole


class Strict(BaseModel):
    """Unknown fields are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


class OrgUnitIn(Strict):
    org_unit_id: str = Field(min_length=1, max_length=64)
    parent_id: str = Field(min_length=1, max_length=64)
    level: OrgLevel
    name: str = Field(min_length=1, max_length=100)
    school_type: SchoolType | None = None


class OrgUnitPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    school_type: SchoolType | None = None


class StaffIn(Strict):
    staff_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=50)
    gender: str | None = None
    phone: str | None = None
    org_unit_id: str
    roles: list[StaffRole] = Field(min_length=1)
    class_ids: list[str] = Field(default_factory=list)
    head_class_id: str | None = None


class StaffPatch(Strict):
    name: str | None = None
    gender: str | None = None
    phone: str | None = None
    roles: list[StaffRole] | None = None
    class_ids: list[str] | None = None
    head_class_id: str | None = None


class GuardianIn(Strict):
    guardian_no: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=50)
    relation: str
    phone: str | None = None
    is_primary: bool = False
    works_away: bool = False


class FamilyIn(Strict):
    family_no: str = Field(min_length=1, max_length=64)
    parents_work_away: bool
    living_arrangement: LivingArrangement
    address: str | None = None
    guardians: list[GuardianIn] = Field(default_factory=list)


class FamilyPatch(Strict):
    parents_work_away: bool | None = None
    living_arrangement: LivingArrangement | None = None
    address: str | None = None


class StudentIn(Strict):
    student_no: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=50)
    gender: str | None = None
    birth_date: date
    national_id: str | None = None
    class_id: str
    family_id: str


class StudentPatch(Strict):
    name: str | None = None
    gender: str | None = None
    birth_date: date | None = None
    national_id: str | None = None
    class_id: str | None = None
    family_id: str | None = None


IMPORT_MAX_ROWS = 1_000_000  # per entity; the whole city has 382,047 guardians


class ImportIn(Strict):
    """A city (or part of one) in the bureau's JSON export: rows per entity, applied in dependency order."""

    org_units: list[dict[str, Any]] | None = Field(default=None, max_length=IMPORT_MAX_ROWS)
    staff: list[dict[str, Any]] | None = Field(default=None, max_length=IMPORT_MAX_ROWS)
    families: list[dict[str, Any]] | None = Field(default=None, max_length=IMPORT_MAX_ROWS)
    guardians: list[dict[str, Any]] | None = Field(default=None, max_length=IMPORT_MAX_ROWS)
    students: list[dict[str, Any]] | None = Field(default=None, max_length=IMPORT_MAX_ROWS)


class CommitteeIn(Strict):
    org_unit_id: str
    formed_on: date


class DissolveIn(Strict):
    dissolved_on: date


class MemberIn(Strict):
    guardian_id: str
    role: MemberRole = MemberRole.MEMBER
    term_start: date
    term_end: date | None = None


class ParentSchoolIn(Strict):
    org_unit_id: str
    kind: ParentSchoolKind
    name: str = Field(min_length=1, max_length=100)


class SessionIn(Strict):
    topic: str = Field(min_length=1, max_length=200)
    held_on: date
    mode: Literal["in_person", "online", "mixed"]
    speaker: str | None = Field(default=None, max_length=100)


class EnrolIn(Strict):
    guardian_ids: list[str] = Field(min_length=1, max_length=5000)


class AttendanceRecordIn(Strict):
    guardian_id: str
    attended: bool


class AttendanceIn(Strict):
    records: list[AttendanceRecordIn] = Field(min_length=1, max_length=5000)


class TeamIn(Strict):
    org_unit_id: str
    name: str = Field(min_length=1, max_length=100)


class TeamMemberIn(Strict):
    role: TeamRole
    staff_id: str | None = None
    name: str | None = Field(default=None, max_length=50, description="for members who are not school staff")
    is_lead: bool = False


class LecturerIn(Strict):
    org_unit_id: str
    staff_id: str | None = None
    name: str | None = Field(default=None, max_length=50)


class LectureIn(Strict):
    lecturer_id: str
    topic: LectureTopic
    title: str | None = Field(default=None, max_length=200)
    given_on: date
    audience_org_unit_ids: list[str] = Field(min_length=1, max_length=500)
    headcount: int = Field(ge=0, le=1_000_000)


# --- responses that carry personal data (every route returning them writes an audit row) ----------------------
# Personal fields are optional: auditors and readers without personal access get the record without them.


class StaffOut(BaseModel):
    staff_id: str
    name: str | None = None
    gender: str | None = None
    phone: str | None = None
    org_unit_id: str
    org_path: str
    roles: list[StaffRole]
    class_ids: list[str]
    head_class_id: str | None
    active: bool


class StaffPage(BaseModel):
    items: list[StaffOut]
    next_cursor: str | None


class StudentOut(BaseModel):
    student_id: str
    student_no: str | None = None
    name: str | None = None
    gender: str | None = None
    birth_date: date | None = None
    national_id: str | None = None
    class_id: str
    org_path: str
    family_id: str
    active: bool
    updated_at: datetime


class StudentPage(BaseModel):
    items: list[StudentOut]
    next_cursor: str | None


class GuardianOut(BaseModel):
    guardian_id: str
    guardian_no: str
    name: str
    relation: str
    phone: str | None
    is_primary: bool
    works_away: bool


class FamilyStudentOut(BaseModel):
    student_id: str
    class_id: str
    org_path: str


class FamilyOut(BaseModel):
    family_id: str
    family_no: str
    parents_work_away: bool
    living_arrangement: LivingArrangement
    address: str | None
    guardians: list[GuardianOut]
    students: list[FamilyStudentOut]


class CommitteeMemberOut(BaseModel):
    guardian_id: str
    name: str | None = Field(default=None, description="only for admins in scope")
    role: MemberRole
    term_start: date
    term_end: date | None


class CommitteeOut(BaseModel):
    committee_id: str
    org_unit_id: str
    org_path: str
    level: str
    formed_on: date
    dissolved_on: date | None
    members: list[CommitteeMemberOut]


class TeamMemberOut(BaseModel):
    member_id: str
    staff_id: str | None
    name: str | None
    role: TeamRole
    is_lead: bool


class TeamFormed(BaseModel):
    team_id: str
    org_unit_id: str
    org_path: str
    name: str = Field(description="the team's name")


class TeamOut(TeamFormed):
    members: list[TeamMemberOut]


class LecturerOut(BaseModel):
    lecturer_id: str
    org_unit_id: str
    org_path: str
    staff_id: str | None
    name: str | None


class LecturerPage(BaseModel):
    items: list[LecturerOut]
    next_cursor: str | None


class TeamMemberAdded(TeamMemberOut):
    team_id: str
