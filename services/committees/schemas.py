"""HTTP models of the committees API.

The directory's field rules live in domain.rows (imports and these routes validate records with them); the models
say the same in their JSON Schema (ids, phone and ID-number patterns, enums, non-blank names, lengths), so a request
the schema accepts is refused only for what a schema cannot say: ids that do not exist (404), cross-field and
cross-record rules, a resident ID's check character, a birth date's range (422 naming the field).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, WithJsonSchema

from services.committees.domain.rows import (
    BIRTH_DATE_RE,
    BIRTH_RANGE,
    ID_RE,
    NATIONAL_ID_RE,
    PHONE_RE,
)
from services.committees.domain.vocabularies import (
    DuplicateReason,
    Gender,
    ImportFormat,
    ImportStatus,
    Relation,
    SessionMode,
    SessionStatus,
)
from shared.contracts.committees import CommitteeLevel, LectureTopic, MemberRole, ParentSchoolKind, TeamRole
from shared.contracts.common import LivingArrangement, OrgLevel, SchoolType, StaffRole

RecordVersion = Annotated[int, Field(description="the version of this record (its `ETag`); `If-Match` on changes")]
VersionAfter = Annotated[int, Field(description="the version of the record after the change (its `ETag`)")]
_TEXT = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"  # what the kit's edge lets through in a body
# Neither a control character nor what Python's str.strip() removes (spelt out: regex engines disagree on \s).
_VISIBLE = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
Id = Annotated[str, Field(pattern=ID_RE.pattern, description="1-64 letters, digits, '-' or '_'")]
Name = Annotated[
    str,
    Field(min_length=1, max_length=50, pattern=rf"^{_TEXT}*{_VISIBLE}{_TEXT}*$", description="not blank"),
]
Phone = Annotated[
    str, Field(pattern=PHONE_RE.pattern, description="an 11-digit mobile or a landline like 0943-1234567")
]
NationalId = Annotated[
    str,
    Field(
        pattern=NATIONAL_ID_RE.pattern,
        description="18-character resident ID number (GB 11643): 6-digit region, birth date YYYYMMDD (a real date), "
        "3-digit sequence, and the check character: `10X98765432`[Σ(digit_i × weight_i) mod 11] over the first 17 "
        "digits with weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 (ISO 7064 MOD 11-2); one that does not fit is a 422",
    ),
]
BirthDate = Annotated[
    date,
    WithJsonSchema({"type": "string", "format": "date", "pattern": BIRTH_DATE_RE.pattern}),
    Field(description=f"{BIRTH_RANGE} (YYYY-MM-DD; the pattern says from 1990, a date after today is a 422)"),
]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable() -> Any:
    """A field that may be left out but is never null (the rule needs a value when one is given): its schema is
    the value's type, neither null nor a default."""
    return Field(default=None, validate_default=False, json_schema_extra=_no_default)


class Strict(BaseModel):
    """Unknown fields are errors, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


UnitName = Annotated[Name, Field(max_length=100)]
Address = Annotated[str, Field(max_length=200)]
Roles = Annotated[list[StaffRole], Field(min_length=1)]


SCHOOL_TYPE_RULE = (
    "required when `level` is `school`, absent (or null) for every other level: a 422 at `/school_type` otherwise"
)
HEAD_CLASS_RULE = (
    "the class this teacher heads (班主任): only with `class_teacher` among `roles` (a 422 at `/head_class_id` "
    "otherwise); a class of the teacher's school, added to `class_ids`"
)


class OrgUnitFilters(BaseModel):
    level: OrgLevel | None = Field(None, description="only the units of this level")


class StaffFilters(BaseModel):
    role: StaffRole | None = Field(None, description="only the staff with this role")
    class_id: str | None = Field(None, description="only the staff who teach this class")


class StudentFilters(BaseModel):
    class_id: str | None = Field(None, description="only the students of this class")


class OrgUnitIn(Strict):
    org_unit_id: Id
    parent_id: Id = Field(description="the unit one level up (a district's city, a school's district...)")
    level: OrgLevel = Field(description="one level below the parent's; a `school` needs `school_type`")
    name: UnitName
    school_type: SchoolType | None = Field(default=None, description=SCHOOL_TYPE_RULE)


class OrgUnitPatch(Strict):
    name: UnitName = omittable()
    school_type: SchoolType | None = Field(
        default=None, description=SCHOOL_TYPE_RULE.replace("`level`", "the unit's level")
    )


class StaffIn(Strict):
    staff_id: Id
    name: Name
    gender: Gender | None = None
    phone: Phone | None = None
    org_unit_id: Id
    roles: Roles
    class_ids: list[Id] = Field(default_factory=list)
    head_class_id: Id | None = Field(default=None, description=HEAD_CLASS_RULE)


class StaffPatch(Strict):
    name: Name = omittable()
    gender: Gender | None = None
    phone: Phone | None = None
    roles: Roles = omittable()
    class_ids: list[Id] | None = None
    head_class_id: Id | None = Field(default=None, description=HEAD_CLASS_RULE)


class GuardianIn(Strict):
    guardian_no: Id
    name: Name
    relation: Relation
    phone: Phone | None = None
    is_primary: bool = False
    works_away: bool = False


class FamilyIn(Strict):
    family_no: Id
    parents_work_away: bool
    living_arrangement: LivingArrangement
    address: Address | None = None
    guardians: list[GuardianIn] = Field(default_factory=list)


class FamilyPatch(Strict):
    parents_work_away: bool = omittable()
    living_arrangement: LivingArrangement = omittable()
    address: Address | None = None


class StudentIn(Strict):
    student_no: Id
    name: Name
    gender: Gender | None = None
    birth_date: BirthDate
    national_id: NationalId | None = None
    class_id: Id
    family_id: str


class StudentPatch(Strict):
    name: Name = omittable()
    gender: Gender | None = None
    birth_date: BirthDate = omittable()
    national_id: NationalId | None = None
    class_id: Id = omittable()
    family_id: str = omittable()


IMPORT_MAX_ROWS = 1_000_000  # per entity; the whole city has 382,047 guardians
# A row's cells as the bureau's export has them: text, numbers, true/false, null, or a list of texts (roles,
# class_ids); nothing nested deeper. Each cell keeps its JSON type (strict, first match); the rules of domain.rows
# then judge each row, and a bad row is reported by the job, not refused here. (Lists hold texts only: a union
# nested in a union made the fuzzer's coverage phase spend its whole budget on this one operation.)
Cell = StrictStr | StrictBool | StrictInt | StrictFloat | None
Rows = Annotated[
    list[dict[str, Annotated[Cell | list[StrictStr], Field(union_mode="left_to_right")]]],
    Field(max_length=IMPORT_MAX_ROWS),
]


class ImportIn(Strict):
    """A city (or part of one) in the bureau's JSON export: rows per entity (at least one), applied in dependency
    order."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    org_units: Rows = omittable()
    staff: Rows = omittable()
    families: Rows = omittable()
    guardians: Rows = omittable()
    students: Rows = omittable()


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
    mode: SessionMode
    speaker: str | None = Field(default=None, max_length=100)
    join_url: str | None = Field(
        default=None,
        max_length=500,
        pattern=r"^https://[^\s\x00-\x1f\x7f-\x9f]+$",  # no space, no control character (the kit refuses those)
        description="the meeting link of an online or mixed session; omitted: the platform's page of the session",
    )


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


# --- responses without personal data ---------------------------------------------------------------------------
# Fields a route's answer may leave out (e.g. `created_at` of a record just written) are optional and the routes
# answer with response_model_exclude_unset, so each answer is exactly the record as stored.


class OrgUnitOut(BaseModel):
    org_unit_id: str
    parent_id: str | None
    level: OrgLevel
    org_path: str
    name: str
    school_type: SchoolType | None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: RecordVersion


class CommitteeSummary(BaseModel):
    committee_id: str
    org_unit_id: str
    org_path: str
    level: CommitteeLevel
    formed_on: date
    dissolved_on: date | None
    created_at: datetime | None = None
    version: int = Field(description="the version of this committee (its `ETag`); `If-Match` on changes")


class CommitteeFormedOut(CommitteeSummary):
    members: list[str] = Field(max_length=0, description="always empty: a committee is formed without members")


class CommitteeDissolvedOut(CommitteeSummary):
    members_left: list[str] = Field(description="guardian ids of the members whose membership ended")


class MembershipOut(BaseModel):
    committee_id: str
    guardian_id: str
    role: MemberRole
    term_start: date
    term_end: date | None


class MembershipEnded(BaseModel):
    committee_id: str
    guardian_id: str
    active: bool


class ParentSchoolOut(BaseModel):
    parent_school_id: str
    org_unit_id: str
    org_path: str
    kind: ParentSchoolKind
    name: str
    created_at: datetime | None = None
    version: int = Field(
        default=1, description="the parent school's version (its ETag; 1 when created): `If-Match` on its changes"
    )


class SessionSummary(BaseModel):
    session_id: str
    topic: str
    held_on: date
    mode: SessionMode
    speaker: str | None
    status: SessionStatus
    join_url: str | None = Field(default=None, description="where guardians join an online or mixed session")
    version: int = Field(
        default=1, description="the session's version (its ETag; 1 when created): `If-Match` on marking it held"
    )


class ParentSchoolDetail(ParentSchoolOut):
    sessions: list[SessionSummary]


class SessionScheduledOut(SessionSummary):
    parent_school_id: str


class SessionOut(SessionScheduledOut):
    created_at: datetime | None = None
    enrolled: int = Field(description="guardians enrolled")
    attended: int = Field(description="guardians recorded as attending")
    expected: int = Field(description="guardians enrolled or attending")
    attendance_rate: float | None = Field(description="attended / expected, 4 places; null when nobody was expected")


class AttendanceOut(SessionOut):
    changed: int = Field(description="attendance records that were new or changed")


class EnrolmentOut(BaseModel):
    session_id: str
    added: int = Field(description="guardians newly enrolled")


class GuardianAttendanceOut(BaseModel):
    guardian_id: str
    expected: int
    attended: int
    attendance_rate: float | None


class TeamMemberRemoved(BaseModel):
    team_id: str
    member_id: str
    active: bool
    version: int = Field(description="the membership's version after the removal")


class LectureOut(BaseModel):
    lecture_id: str
    lecturer_id: str
    org_path: str
    topic: LectureTopic
    title: str | None
    given_on: date
    audience_org_paths: list[str]
    headcount: int
    created_at: datetime | None = None


class StaffLeftOut(BaseModel):
    staff_id: str
    active: bool
    version: VersionAfter


class StudentLeftOut(BaseModel):
    student_id: str
    active: bool
    version: VersionAfter


class EntityCounts(BaseModel):
    received: int
    created: int
    updated: int
    unchanged: int
    rejected: int


class ImportRowError(BaseModel):
    entity: str
    row: int = Field(description="the CSV line (header = 1) or the JSON array index (from 0)")
    field: str
    reason: str


class ImportLinks(BaseModel):
    self: str


class ImportJobOut(BaseModel):
    import_id: str
    format: ImportFormat
    status: ImportStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, EntityCounts] | None = Field(description="per entity, once the job finished")
    events: int | None = Field(description="events written, once the job finished")
    timings: dict[str, float] | None = Field(description="seconds per step, once the job finished")
    error_count: int | None
    errors: list[ImportRowError]
    duplicate_candidates: list[DuplicatesOut] = Field(
        description="each student the import created that is likely the same child as another record, with them"
    )
    message: str | None = None
    files: dict[str, int] | None = Field(default=None, description="bytes uploaded per entity, before the start")
    links: ImportLinks


# --- responses that carry personal data (every route returning them writes an audit row) ----------------------
# Personal fields are optional: auditors and readers without personal access get the record without them.


class StaffOut(BaseModel):
    staff_id: str
    name: str | None = None
    gender: Gender | None = None
    phone: str | None = None
    org_unit_id: str
    org_path: str
    roles: list[StaffRole]
    class_ids: list[str]
    head_class_id: str | None
    active: bool
    version: RecordVersion


class StudentOut(BaseModel):
    student_id: str
    student_no: str | None = None
    name: str | None = None
    gender: Gender | None = None
    birth_date: date | None = None
    national_id: str | None = None
    class_id: str
    org_path: str
    family_id: str
    active: bool
    updated_at: datetime
    version: RecordVersion


class DuplicateCandidateOut(BaseModel):
    """Another student record that is likely the same child (ids and evidence only: no names)."""

    student_id: str
    score: float = Field(ge=0, le=1, description="how alike the two records are (0..1; candidates from 0.7)")
    reasons: list[DuplicateReason]


class StudentCreatedOut(StudentOut):
    """A registered student, with the records that are likely the same child (merge them with POST .../merge)."""

    duplicate_candidates: list[DuplicateCandidateOut]


class DuplicatesOut(BaseModel):
    """The records that are likely the same child as `student_id`, best first."""

    student_id: str
    candidates: list[DuplicateCandidateOut]


class MergeIn(Strict):
    """Body of POST /students/{student_id}/merge: the duplicate record to merge into this one."""

    duplicate_id: str = Field(min_length=1, max_length=64)


class StudentMergedOut(StudentOut):
    """The surviving record after a merge, and the record merged into it (gone from here on)."""

    merged_id: str


class GuardianOut(BaseModel):
    guardian_id: str
    guardian_no: str
    name: str
    relation: Relation
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
    version: RecordVersion


class CommitteeMemberOut(BaseModel):
    guardian_id: str
    name: str | None = Field(default=None, description="only for admins in scope")
    role: MemberRole
    term_start: date
    term_end: date | None


class CommitteeOut(CommitteeSummary):
    members: list[CommitteeMemberOut]


class TeamMemberOut(BaseModel):
    member_id: str
    staff_id: str | None
    name: str | None
    role: TeamRole
    is_lead: bool
    version: int = Field(
        default=1, description="the membership's version (its ETag; 1 when created): `If-Match` on removing the member"
    )


class TeamSummary(BaseModel):
    team_id: str
    org_unit_id: str
    org_path: str
    name: str = Field(description="the team's name")
    created_at: datetime | None = None
    version: int = Field(
        default=1, description="the team's version (its ETag; 1 when created): `If-Match` on its changes"
    )


class TeamOut(TeamSummary):
    members: list[TeamMemberOut]


class LecturerOut(BaseModel):
    lecturer_id: str
    org_unit_id: str
    org_path: str
    staff_id: str | None
    name: str | None
    created_at: datetime | None = None
    version: int = Field(
        default=1, description="the lecturer's version (its ETag; 1 when created): `If-Match` on leaving the group"
    )


class TeamMemberAdded(TeamMemberOut):
    team_id: str


class OnlineAttendanceRecordIn(Strict):
    guardian_id: str
    minutes: int = Field(ge=0, le=1440, description="minutes the guardian was connected, as the platform measured")


class OnlineAttendanceIn(Strict):
    """What the online platform reports after (or during) an online or mixed session."""

    records: list[OnlineAttendanceRecordIn] = Field(min_length=1, max_length=5000)


class GuardianCompletionOut(BaseModel):
    """A guardian's progress through one parent school (ids and counts only)."""

    guardian_id: str
    sessions_held: int
    attended: int
    attended_online: int
    attended_in_person: int
    completed: bool = Field(description="attended at least the configured share of the held sessions")


class LecturerLeftOut(BaseModel):
    lecturer_id: str
    org_path: str
    active: bool
    version: int = Field(description="the lecturer's version after leaving")
