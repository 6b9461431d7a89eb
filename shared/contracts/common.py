"""Vocabulary shared by the contracts: org placement, finding categories, severities, roles."""

from __future__ import annotations

from enum import StrEnum


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


def school_of(org_path: str) -> str | None:
    """The school segment of an org path, if the path goes that deep."""
    parts = [p for p in org_path.split("/") if p]
    return parts[2] if len(parts) > 2 else None
