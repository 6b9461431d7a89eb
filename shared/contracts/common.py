"""Vocabulary shared by the contracts: org placement, finding categories, severities, roles."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum, StrEnum
from typing import Any, Self

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

Labels = Mapping[Any, tuple[str, str]]  # value (or enum member) -> (zh, en)


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


class Vocabulary(StrEnum):
    """A vocabulary of codes, each declared once with its zh/en labels: `CODE = "code", "中文", "English"`. A member
    is its code (a `str`); `.zh` and `.en` are its labels, and pydantic writes them into every JSON Schema it makes
    of the vocabulary: the OpenAPI documents, the events' schemas and the AsyncAPI document alike.

    A vocabulary that is part of another names its members: `DISTRICT = OrgLevel.DISTRICT` (the code and labels of
    `OrgLevel.DISTRICT`)."""

    _value_: str
    zh: str
    en: str

    def __new__(cls, value: str, zh: str = "", en: str = "") -> Self:
        # Runs once per member as the class is made (`Vocabulary("code")` looks a member up, as for any enum; the
        # defaults only let type checkers see that call).
        code, labels = (value.value, (value.zh, value.en)) if isinstance(value, Vocabulary) else (value, (zh, en))
        if not all(labels):
            raise TypeError(f"{cls.__name__}: {value!r} needs its zh and en labels")
        member = str.__new__(cls, code)
        member._value_ = code
        member.zh, member.en = labels
        return member

    @classmethod
    def labels(cls) -> dict[Self, tuple[str, str]]:
        """Every member's (zh, en) labels, in declaration order."""
        return {m: (m.zh, m.en) for m in cls}

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        describe(handler.resolve_ref_schema(json_schema), cls.labels())
        return json_schema


class OrgLevel(Vocabulary):
    """Levels of the org tree: city → district/county → school → grade → class."""

    CITY = "city", "市", "City"
    DISTRICT = "district", "区县", "District or county"
    SCHOOL = "school", "学校", "School"
    GRADE = "grade", "年级", "Grade"
    CLASS = "class", "班级", "Class"


class SchoolType(Vocabulary):
    """Kinds of school."""

    KINDERGARTEN = "kindergarten", "幼儿园", "Kindergarten"
    PRIMARY = "primary", "小学", "Primary school"
    JUNIOR_SECONDARY = "junior_secondary", "初级中学", "Junior secondary school"
    SENIOR_SECONDARY = "senior_secondary", "高级中学", "Senior secondary school"
    NINE_YEAR = "nine_year", "九年一贯制学校", "Nine-year school"
    SPECIAL_EDUCATION = "special_education", "特殊教育学校", "Special education school"


class StaffRole(Vocabulary):
    """Roles of school staff."""

    CLASS_TEACHER = "class_teacher", "班主任", "Class teacher"
    SUBJECT_TEACHER = "subject_teacher", "任课教师", "Subject teacher"
    MENTAL_HEALTH_TEACHER = "mental_health_teacher", "心理健康教师", "Mental-health teacher"
    IDEOLOGICAL_POLITICAL_TEACHER = "ideological_political_teacher", "思政课教师", "Ideological and political teacher"
    VICE_PRINCIPAL = "vice_principal", "副校长", "Vice principal"
    PRINCIPAL = "principal", "校长", "Principal"


class LivingArrangement(Vocabulary):
    """Who the child lives with."""

    BOTH_PARENTS = "both_parents", "与父母同住", "Both parents"
    ONE_PARENT = "one_parent", "与父亲或母亲同住", "One parent"
    GRANDPARENTS = "grandparents", "与祖辈同住", "Grandparents"
    RELATIVES = "relatives", "与其他亲属同住", "Relatives"
    ALONE = "alone", "独自居住", "Alone"
    INSTITUTION = "institution", "机构供养", "Institution"


class GuidanceTopic(Vocabulary):
    """Family-education guidance a teacher gives during a home visit (家访指导主题): the vocabulary visits accept and
    reporting counts. Codes only (free text about a family would carry minors' details out of visits); add codes
    freely, never reuse or rename one."""

    STUDY_HABITS = "study_habits", "学习习惯", "Study habits"
    HOMEWORK = "homework", "作业辅导", "Homework support"
    READING_AT_HOME = "reading_at_home", "家庭阅读", "Reading at home"
    SCREEN_TIME = "screen_time", "电子产品使用", "Screen time"
    EMOTIONAL_SUPPORT = "emotional_support", "情绪与心理关怀", "Emotional support and mental health"
    PARENT_CHILD_COMMUNICATION = "parent_child_communication", "亲子沟通", "Parent–child communication"
    SAFETY_AT_HOME = "safety_at_home", "居家与出行安全", "Safety at home and on the way"
    HEALTHY_DIET = "healthy_diet", "健康饮食与作息", "Healthy diet and routine"
    FAMILY_EDUCATION_LAW = "family_education_law", "家庭教育促进法宣传", "The Family Education Promotion Law"
    LEFT_BEHIND_CARE = "left_behind_care", "留守儿童关爱", "Care for left-behind children"


class Category(Vocabulary):
    """Finding categories (DESIGN.md §2)."""

    LEFT_BEHIND = "left_behind", "留守儿童", "Left-behind child"
    ORPHANED_OR_UNACCOMPANIED = "orphaned_or_unaccompanied", "孤儿或事实无人抚养", "Orphaned or unaccompanied"
    DISABILITY = "disability", "残疾儿童", "Disability"
    FAMILY_HARDSHIP = "family_hardship", "家庭经济困难", "Family hardship"
    MENTAL_HEALTH = "mental_health", "心理健康", "Mental health"
    GUARDIANSHIP_GAP = "guardianship_gap", "监护缺失", "Guardianship gap"
    FAMILY_CONFLICT = "family_conflict", "家庭矛盾", "Family conflict"
    SAFETY_RISK = "safety_risk", "安全风险", "Safety risk"
    HEALTH_NEED = "health_need", "健康需求", "Health need"
    LEARNING_DIFFICULTY = "learning_difficulty", "学习困难", "Learning difficulty"
    FAMILY_EDUCATION_NEED = "family_education_need", "家庭教育需求", "Family education need"


class Severity(Vocabulary):
    """Finding severity, lowest first."""

    LOW = "low", "低", "Low"
    MEDIUM = "medium", "中", "Medium"
    HIGH = "high", "高", "High"
    URGENT = "urgent", "紧急", "Urgent"


SEVERITY_ORDER = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.URGENT: 3}


class VisitMode(Vocabulary):
    """How a home visit took place."""

    IN_HOME = "in_home", "入户家访", "Home visit"
    ONLINE = "online", "线上家访", "Online"
    PHONE = "phone", "电话家访", "Phone"
    AT_SCHOOL = "at_school", "到校约谈", "At school"


class Department(Vocabulary):
    """Departments that receive referrals."""

    CIVIL_AFFAIRS = "civil_affairs", "民政部门", "Civil affairs"
    DISABLED_PERSONS_FEDERATION = "disabled_persons_federation", "残疾人联合会", "Disabled Persons' Federation"
    WOMENS_FEDERATION = "womens_federation", "妇女联合会", "Women's Federation"
    HEALTH = "health", "卫生健康部门", "Health"
    PUBLIC_SECURITY = "public_security", "公安部门", "Public security"


def school_of(org_path: str) -> str | None:
    """The school segment of an org path, if the path goes that deep."""
    parts = [p for p in org_path.split("/") if p]
    return parts[2] if len(parts) > 2 else None
