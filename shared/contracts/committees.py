"""Events published by committees: the directory and the cooperation structure (no names or contacts)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from shared.contracts.common import LivingArrangement, OrgLevel, SchoolType, StaffRole, Vocabulary
from shared.events import Payload, event_type

ORG = "committees.org_unit.events"
STAFF = "committees.staff.events"
STUDENT = "committees.student.events"
FAMILY = "committees.family.events"
COMMITTEE = "committees.committee.events"
PARENT_SCHOOL = "committees.parent_school.events"
TEAM = "committees.instructor_team.events"
LECTURE = "committees.lecture.events"
LECTURER = "committees.lecturer.events"


class OrgUnitFacts(Payload):
    """An org unit's place in the tree (names of units are public, not personal)."""

    org_unit_id: str
    parent_id: str | None
    level: OrgLevel
    org_path: str = Field(description="ids from the city down, e.g. /620400/620421/s0012")
    name: str
    school_type: SchoolType | None = None
    occurred_at: datetime


@event_type("committees.org_unit.registered.v1", topic=ORG, key="org_unit_id")
class OrgUnitRegistered(OrgUnitFacts):
    """An org unit was added to the directory."""


@event_type("committees.org_unit.changed.v1", topic=ORG, key="org_unit_id")
class OrgUnitChanged(OrgUnitFacts):
    """An org unit's facts changed."""


class StaffFacts(Payload):
    """A staff member's placement and roles."""

    staff_id: str
    org_path: str = Field(description="the school (or district office) the staff member belongs to")
    roles: list[StaffRole]
    class_ids: list[str] = Field(default_factory=list, description="classes the staff member teaches")
    head_class_id: str | None = Field(default=None, description="the class this staff member is class teacher of")
    occurred_at: datetime


@event_type("committees.staff.registered.v1", topic=STAFF, key="staff_id")
class StaffRegistered(StaffFacts):
    """A staff member was registered."""


@event_type("committees.staff.changed.v1", topic=STAFF, key="staff_id")
class StaffChanged(StaffFacts):
    """A staff member's roles or classes changed."""


@event_type("committees.staff.left.v1", topic=STAFF, key="staff_id")
class StaffLeft(Payload):
    """A staff member left."""

    staff_id: str
    org_path: str
    occurred_at: datetime


class StudentFacts(Payload):
    """A student by pseudonymous id, with class placement and family."""

    student_id: str = Field(description="pseudonymous id used by every other service")
    class_id: str
    org_path: str = Field(description="path of the student's class")
    family_id: str
    occurred_at: datetime


@event_type("committees.student.registered.v1", topic=STUDENT, key="student_id")
class StudentRegistered(StudentFacts):
    """A student was registered."""


@event_type("committees.student.changed.v1", topic=STUDENT, key="student_id")
class StudentChanged(StudentFacts):
    """A student moved class or family."""


@event_type("committees.student.left.v1", topic=STUDENT, key="student_id")
class StudentLeft(Payload):
    """A student left the city's schools."""

    student_id: str
    org_path: str
    occurred_at: datetime


@event_type("committees.student.merged.v1", topic=STUDENT, key="student_id")
class StudentMerged(Payload):
    """An administrator merged a duplicate student record into another: the same child was registered twice. The
    duplicate (`student_id`) is gone from here on, like a leaver; whatever other services hold under it now
    belongs to `merged_into`."""

    student_id: str = Field(description="the duplicate record, gone from here on")
    merged_into: str = Field(description="the surviving record of the same child")
    org_path: str = Field(description="path of the duplicate's class")
    occurred_at: datetime


class FamilyFacts(Payload):
    """A family's situation as facts other services need (no names, addresses or phone numbers)."""

    family_id: str
    student_ids: list[str]
    guardian_ids: list[str]
    parents_work_away: bool
    living_arrangement: LivingArrangement
    occurred_at: datetime


@event_type("committees.family.registered.v1", topic=FAMILY, key="family_id")
class FamilyRegistered(FamilyFacts):
    """A family and its guardians were registered."""


@event_type("committees.family.changed.v1", topic=FAMILY, key="family_id")
class FamilyChanged(FamilyFacts):
    """A family's situation changed."""


class CommitteeLevel(Vocabulary):
    """Levels a parent committee exists at."""

    COUNTY = "county", "县级家长委员会", "County committee"
    SCHOOL = "school", "校级家长委员会", "School committee"
    GRADE = "grade", "年级家长委员会", "Grade committee"
    CLASS = "class", "班级家长委员会", "Class committee"


class CommitteeOfUnit(Payload):
    """The committee an event is about, and the org unit it is the committee of."""

    committee_id: str
    org_unit_id: str
    org_path: str


@event_type("committees.committee.formed.v1", topic=COMMITTEE, key="committee_id")
class CommitteeFormed(CommitteeOfUnit):
    """A parent committee was formed for an org unit."""

    level: CommitteeLevel
    formed_on: date
    occurred_at: datetime


@event_type("committees.committee.dissolved.v1", topic=COMMITTEE, key="committee_id")
class CommitteeDissolved(CommitteeOfUnit):
    """A parent committee was dissolved."""

    dissolved_on: date
    occurred_at: datetime


class MemberRole(Vocabulary):
    """Roles in a parent committee."""

    CHAIR = "chair", "主任", "Chair"
    VICE_CHAIR = "vice_chair", "副主任", "Vice chair"
    MEMBER = "member", "委员", "Member"
    SECRETARY = "secretary", "秘书", "Secretary"


class CommitteeMembership(Payload):
    """The guardian a committee event is about, and the committee."""

    committee_id: str
    guardian_id: str
    org_path: str


@event_type("committees.committee.member_joined.v1", topic=COMMITTEE, key="committee_id")
class CommitteeMemberJoined(CommitteeMembership):
    """A guardian joined a parent committee."""

    role: MemberRole
    term_start: date
    term_end: date | None
    occurred_at: datetime


@event_type("committees.committee.member_left.v1", topic=COMMITTEE, key="committee_id")
class CommitteeMemberLeft(CommitteeMembership):
    """A guardian left a parent committee."""

    occurred_at: datetime


class ParentSchoolKind(Vocabulary):
    """County-level, school-level or online parent school."""

    COUNTY = "county", "县级家长学校", "County parent school"
    SCHOOL = "school", "校级家长学校", "School parent school"
    ONLINE = "online", "网上家长学校", "Online parent school"


@event_type("committees.parent_school.established.v1", topic=PARENT_SCHOOL, key="parent_school_id")
class ParentSchoolEstablished(Payload):
    """A parent school was established."""

    parent_school_id: str
    org_path: str
    kind: ParentSchoolKind
    occurred_at: datetime


class SessionOf(Payload):
    """The parent-school session an event is about."""

    parent_school_id: str
    session_id: str


@event_type("committees.parent_school.session_scheduled.v1", topic=PARENT_SCHOOL, key="parent_school_id")
class SessionScheduled(SessionOf):
    """A parent-school session was scheduled."""

    org_path: str
    topic: str
    held_on: date
    mode: str
    occurred_at: datetime


@event_type("committees.parent_school.session_held.v1", topic=PARENT_SCHOOL, key="parent_school_id")
class SessionHeld(SessionOf):
    """A parent-school session took place."""

    org_path: str
    held_on: date
    enrolled: int
    occurred_at: datetime


@event_type("committees.parent_school.attendance_recorded.v1", topic=PARENT_SCHOOL, key="parent_school_id")
class AttendanceRecorded(SessionOf):
    """Attendance of a guardian at a session was recorded (latest record per guardian counts)."""

    guardian_id: str
    org_path: str
    attended: bool
    occurred_at: datetime
    online: bool | None = Field(
        default=None,
        description="true: attended (or not) online, as the online platform reported it through the API; false: in"
        " person; null in events published before the field existed",
    )


class TeamRole(Vocabulary):
    """Roles in an instructor team."""

    VICE_PRINCIPAL_IN_CHARGE = "vice_principal_in_charge", "分管副校长", "Vice principal in charge"
    CLASS_TEACHER = StaffRole.CLASS_TEACHER  # a teacher's role in a team is the staff role of the same name
    MENTAL_HEALTH_TEACHER = StaffRole.MENTAL_HEALTH_TEACHER
    IDEOLOGICAL_POLITICAL_TEACHER = StaffRole.IDEOLOGICAL_POLITICAL_TEACHER
    EXPERT_SCHOLAR = "expert_scholar", "专家学者", "Expert or scholar"
    OUTSTANDING_PARENT = "outstanding_parent", "优秀家长", "Outstanding parent"


@event_type("committees.instructor_team.formed.v1", topic=TEAM, key="team_id")
class InstructorTeamFormed(Payload):
    """An instructor team was formed for a school or county."""

    team_id: str
    org_path: str
    occurred_at: datetime


class TeamMembership(Payload):
    """The member of an instructor team an event is about."""

    team_id: str
    member_id: str


@event_type("committees.instructor_team.member_added.v1", topic=TEAM, key="team_id")
class InstructorTeamMemberAdded(TeamMembership):
    """A member joined an instructor team (staff id when the member is school staff)."""

    staff_id: str | None
    org_path: str
    role: TeamRole
    is_lead: bool
    occurred_at: datetime


@event_type("committees.instructor_team.member_removed.v1", topic=TEAM, key="team_id")
class InstructorTeamMemberRemoved(TeamMembership):
    """A member left an instructor team."""

    org_path: str
    occurred_at: datetime


class LectureTopic(Vocabulary):
    """Policy topics of publicity lectures."""

    FAMILY_EDUCATION_PROMOTION_LAW = (
        "family_education_promotion_law",
        "《家庭教育促进法》",
        "The Family Education Promotion Law",
    )
    NATIONAL_GUIDANCE_OUTLINE = (
        "national_guidance_outline",
        "《全国家庭教育指导大纲（修订）》",
        "National Family Education Guidance Outline (revised)",
    )
    MINISTRY_GUIDANCE = (
        "ministry_guidance",
        "《教育部关于加强家庭教育工作的指导意见》",
        "Ministry of Education's Guiding Opinions on Strengthening Family Education",
    )
    OTHER = "other", "其他政策法规", "Other policy"


@event_type("committees.lecturer.joined.v1", topic=LECTURER, key="lecturer_id")
class LecturerJoined(Payload):
    """A member joined the lecturer group of an org unit (staff id when the lecturer is school staff)."""

    lecturer_id: str
    org_path: str = Field(description="the org unit whose lecturer group the member belongs to")
    staff_id: str | None
    occurred_at: datetime


@event_type("committees.lecturer.left.v1", topic=LECTURER, key="lecturer_id")
class LecturerLeft(Payload):
    """A member left the lecturer group."""

    lecturer_id: str
    org_path: str
    occurred_at: datetime


@event_type("committees.lecture.given.v1", topic=LECTURE, key="lecture_id")
class LectureGiven(Payload):
    """A lecturer-group member gave a publicity lecture."""

    lecture_id: str
    lecturer_id: str
    org_path: str
    topic: LectureTopic
    given_on: date
    audience_org_paths: list[str]
    headcount: int
    occurred_at: datetime
