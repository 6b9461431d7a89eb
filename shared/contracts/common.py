"""Vocabulary shared by the contracts: org placement, finding categories, severities, roles."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any, TypeVar

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

E = TypeVar("E", bound=Enum)
Labels = Mapping[Any, tuple[str, str]]  # value (or enum member) -> (zh, en)

# Every vocabulary's zh/en labels, by enum (Literal vocabularies carry theirs in `Labelled`).
LABELS: dict[type[Enum], Labels] = {}


def _value(member: Any) -> str:
    return str(member.value if isinstance(member, Enum) else member)


def describe(schema: dict[str, Any], labels: Labels) -> None:
    """Write a vocabulary's zh/en labels into its JSON Schema: the description lists them (`* `v`: zh / en`) and
    `x-enum-descriptions` holds one `zh / en` per value, in the enum's order (what OpenAPI generators and
    AsyncAPI renderers show). Every value must have its labels."""
    by_value = {_value(k): v for k, v in labels.items()}
    values = [str(v) for v in schema["enum"]]
    missing = [v for v in values if v not in by_value]
    if missing:
        raise ValueError(f"no zh/en labels for {', '.join(missing)} of {schema.get('title', values)}")
    lines = [f"* `{v}`: {by_value[v][0]} / {by_value[v][1]}" for v in values]
    intro = str(schema.get("description", "")).strip()
    schema["description"] = "\n".join([intro, "", *lines]).strip()
    schema["x-enum-descriptions"] = [" / ".join(by_value[v]) for v in values]


class Labelled:
    """`Annotated[Literal["a", "b"], Labelled({...})]`: a Literal vocabulary with its zh/en labels in its schema."""

    def __init__(self, labels: Labels) -> None:
        self.labels = labels

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        describe(handler.resolve_ref_schema(schema), self.labels)
        return schema


def labelled(enum: type[E], labels: Labels) -> None:
    """Give an enum its zh/en labels (every member, or this raises): pydantic then writes them into every JSON
    Schema it makes of the enum — the OpenAPI documents, the events' schemas and the AsyncAPI document alike."""
    missing = [m.value for m in enum if m not in labels]
    if missing:
        raise ValueError(f"{enum.__name__}: no zh/en labels for {', '.join(missing)}")
    LABELS[enum] = labels

    def schema(cls: type[Enum], core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        describe(handler.resolve_ref_schema(json_schema), labels)
        return json_schema

    enum.__get_pydantic_json_schema__ = classmethod(schema)  # type: ignore[attr-defined]


class OrgLevel(StrEnum):
    """Levels of the org tree: city → district/county → school → grade → class."""

    CITY = "city"
    DISTRICT = "district"
    SCHOOL = "school"
    GRADE = "grade"
    CLASS = "class"


class SchoolType(StrEnum):
    """Kinds of school."""

    KINDERGARTEN = "kindergarten"
    PRIMARY = "primary"
    JUNIOR_SECONDARY = "junior_secondary"
    SENIOR_SECONDARY = "senior_secondary"
    NINE_YEAR = "nine_year"
    SPECIAL_EDUCATION = "special_education"


class StaffRole(StrEnum):
    """Roles of school staff."""

    CLASS_TEACHER = "class_teacher"
    SUBJECT_TEACHER = "subject_teacher"
    MENTAL_HEALTH_TEACHER = "mental_health_teacher"
    IDEOLOGICAL_POLITICAL_TEACHER = "ideological_political_teacher"
    VICE_PRINCIPAL = "vice_principal"
    PRINCIPAL = "principal"


class LivingArrangement(StrEnum):
    """Who the child lives with."""

    BOTH_PARENTS = "both_parents"
    ONE_PARENT = "one_parent"
    GRANDPARENTS = "grandparents"
    RELATIVES = "relatives"
    ALONE = "alone"
    INSTITUTION = "institution"


class GuidanceTopic(StrEnum):
    """Family-education guidance a teacher gives during a home visit (家访指导主题): the vocabulary visits accept and
    reporting counts. Codes only (free text about a family would carry minors' details out of visits); add codes
    freely, never reuse or rename one."""

    STUDY_HABITS = "study_habits"
    HOMEWORK = "homework"
    READING_AT_HOME = "reading_at_home"
    SCREEN_TIME = "screen_time"
    EMOTIONAL_SUPPORT = "emotional_support"
    PARENT_CHILD_COMMUNICATION = "parent_child_communication"
    SAFETY_AT_HOME = "safety_at_home"
    HEALTHY_DIET = "healthy_diet"
    FAMILY_EDUCATION_LAW = "family_education_law"
    LEFT_BEHIND_CARE = "left_behind_care"


class Category(StrEnum):
    """Finding categories (DESIGN.md §2)."""

    LEFT_BEHIND = "left_behind"
    ORPHANED_OR_UNACCOMPANIED = "orphaned_or_unaccompanied"
    DISABILITY = "disability"
    FAMILY_HARDSHIP = "family_hardship"
    MENTAL_HEALTH = "mental_health"
    GUARDIANSHIP_GAP = "guardianship_gap"
    FAMILY_CONFLICT = "family_conflict"
    SAFETY_RISK = "safety_risk"
    HEALTH_NEED = "health_need"
    LEARNING_DIFFICULTY = "learning_difficulty"
    FAMILY_EDUCATION_NEED = "family_education_need"


CATEGORY_LABELS: dict[Category, tuple[str, str]] = {
    Category.LEFT_BEHIND: ("留守儿童", "Left-behind child"),
    Category.ORPHANED_OR_UNACCOMPANIED: ("孤儿或事实无人抚养", "Orphaned or unaccompanied"),
    Category.DISABILITY: ("残疾儿童", "Disability"),
    Category.FAMILY_HARDSHIP: ("家庭经济困难", "Family hardship"),
    Category.MENTAL_HEALTH: ("心理健康", "Mental health"),
    Category.GUARDIANSHIP_GAP: ("监护缺失", "Guardianship gap"),
    Category.FAMILY_CONFLICT: ("家庭矛盾", "Family conflict"),
    Category.SAFETY_RISK: ("安全风险", "Safety risk"),
    Category.HEALTH_NEED: ("健康需求", "Health need"),
    Category.LEARNING_DIFFICULTY: ("学习困难", "Learning difficulty"),
    Category.FAMILY_EDUCATION_NEED: ("家庭教育需求", "Family education need"),
}


class Severity(StrEnum):
    """Finding severity, lowest first."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


SEVERITY_ORDER = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.URGENT: 3}


class VisitMode(StrEnum):
    """How a home visit took place."""

    IN_HOME = "in_home"
    ONLINE = "online"
    PHONE = "phone"
    AT_SCHOOL = "at_school"


class Department(StrEnum):
    """Departments that receive referrals."""

    CIVIL_AFFAIRS = "civil_affairs"
    DISABLED_PERSONS_FEDERATION = "disabled_persons_federation"
    WOMENS_FEDERATION = "womens_federation"
    HEALTH = "health"
    PUBLIC_SECURITY = "public_security"


SEVERITY_LABELS: dict[Severity, tuple[str, str]] = {
    Severity.LOW: ("低", "Low"),
    Severity.MEDIUM: ("中", "Medium"),
    Severity.HIGH: ("高", "High"),
    Severity.URGENT: ("紧急", "Urgent"),
}

VISIT_MODE_LABELS: dict[VisitMode, tuple[str, str]] = {
    VisitMode.IN_HOME: ("入户家访", "Home visit"),
    VisitMode.ONLINE: ("线上家访", "Online"),
    VisitMode.PHONE: ("电话家访", "Phone"),
    VisitMode.AT_SCHOOL: ("到校约谈", "At school"),
}

DEPARTMENT_LABELS: dict[Department, tuple[str, str]] = {
    Department.CIVIL_AFFAIRS: ("民政部门", "Civil affairs"),
    Department.DISABLED_PERSONS_FEDERATION: ("残疾人联合会", "Disabled Persons' Federation"),
    Department.WOMENS_FEDERATION: ("妇女联合会", "Women's Federation"),
    Department.HEALTH: ("卫生健康部门", "Health"),
    Department.PUBLIC_SECURITY: ("公安部门", "Public security"),
}

ORG_LEVEL_LABELS: dict[OrgLevel, tuple[str, str]] = {
    OrgLevel.CITY: ("市", "City"),
    OrgLevel.DISTRICT: ("区县", "District or county"),
    OrgLevel.SCHOOL: ("学校", "School"),
    OrgLevel.GRADE: ("年级", "Grade"),
    OrgLevel.CLASS: ("班级", "Class"),
}

LIVING_ARRANGEMENT_LABELS: dict[LivingArrangement, tuple[str, str]] = {
    LivingArrangement.BOTH_PARENTS: ("与父母同住", "Both parents"),
    LivingArrangement.ONE_PARENT: ("与父亲或母亲同住", "One parent"),
    LivingArrangement.GRANDPARENTS: ("与祖辈同住", "Grandparents"),
    LivingArrangement.RELATIVES: ("与其他亲属同住", "Relatives"),
    LivingArrangement.ALONE: ("独自居住", "Alone"),
    LivingArrangement.INSTITUTION: ("机构供养", "Institution"),
}

GUIDANCE_TOPIC_LABELS: dict[GuidanceTopic, tuple[str, str]] = {
    GuidanceTopic.STUDY_HABITS: ("学习习惯", "Study habits"),
    GuidanceTopic.HOMEWORK: ("作业辅导", "Homework support"),
    GuidanceTopic.READING_AT_HOME: ("家庭阅读", "Reading at home"),
    GuidanceTopic.SCREEN_TIME: ("电子产品使用", "Screen time"),
    GuidanceTopic.EMOTIONAL_SUPPORT: ("情绪与心理关怀", "Emotional support and mental health"),
    GuidanceTopic.PARENT_CHILD_COMMUNICATION: ("亲子沟通", "Parent–child communication"),
    GuidanceTopic.SAFETY_AT_HOME: ("居家与出行安全", "Safety at home and on the way"),
    GuidanceTopic.HEALTHY_DIET: ("健康饮食与作息", "Healthy diet and routine"),
    GuidanceTopic.FAMILY_EDUCATION_LAW: ("家庭教育促进法宣传", "The Family Education Promotion Law"),
    GuidanceTopic.LEFT_BEHIND_CARE: ("留守儿童关爱", "Care for left-behind children"),
}

SCHOOL_TYPE_LABELS: dict[SchoolType, tuple[str, str]] = {
    SchoolType.KINDERGARTEN: ("幼儿园", "Kindergarten"),
    SchoolType.PRIMARY: ("小学", "Primary school"),
    SchoolType.JUNIOR_SECONDARY: ("初级中学", "Junior secondary school"),
    SchoolType.SENIOR_SECONDARY: ("高级中学", "Senior secondary school"),
    SchoolType.NINE_YEAR: ("九年一贯制学校", "Nine-year school"),
    SchoolType.SPECIAL_EDUCATION: ("特殊教育学校", "Special education school"),
}

STAFF_ROLE_LABELS: dict[StaffRole, tuple[str, str]] = {
    StaffRole.CLASS_TEACHER: ("班主任", "Class teacher"),
    StaffRole.SUBJECT_TEACHER: ("任课教师", "Subject teacher"),
    StaffRole.MENTAL_HEALTH_TEACHER: ("心理健康教师", "Mental-health teacher"),
    StaffRole.IDEOLOGICAL_POLITICAL_TEACHER: ("思政课教师", "Ideological and political teacher"),
    StaffRole.VICE_PRINCIPAL: ("副校长", "Vice principal"),
    StaffRole.PRINCIPAL: ("校长", "Principal"),
}

labelled(Category, CATEGORY_LABELS)
labelled(Severity, SEVERITY_LABELS)
labelled(VisitMode, VISIT_MODE_LABELS)
labelled(Department, DEPARTMENT_LABELS)
labelled(OrgLevel, ORG_LEVEL_LABELS)
labelled(LivingArrangement, LIVING_ARRANGEMENT_LABELS)
labelled(GuidanceTopic, GUIDANCE_TOPIC_LABELS)
labelled(SchoolType, SCHOOL_TYPE_LABELS)
labelled(StaffRole, STAFF_ROLE_LABELS)


def school_of(org_path: str) -> str | None:
    """The school segment of an org path, if the path goes that deep."""
    parts = [p for p in org_path.split("/") if p]
    return parts[2] if len(parts) > 2 else None
