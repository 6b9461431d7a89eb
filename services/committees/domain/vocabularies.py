"""The codes of the committees' records and API that are not the contracts' (each with its zh/en labels)."""

from __future__ import annotations

from shared.contracts.common import Vocabulary


class Entity(Vocabulary):
    """What an import holds, in dependency order."""

    ORG_UNITS = "org_units", "组织机构", "Org units"
    STAFF = "staff", "教职工", "Staff"
    FAMILIES = "families", "家庭", "Families"
    GUARDIANS = "guardians", "监护人", "Guardians"
    STUDENTS = "students", "学生", "Students"


class Relation(Vocabulary):
    """A guardian's relation to the child."""

    MOTHER = "mother", "母亲", "Mother"
    FATHER = "father", "父亲", "Father"
    GRANDMOTHER = "grandmother", "祖母或外祖母", "Grandmother"
    GRANDFATHER = "grandfather", "祖父或外祖父", "Grandfather"
    RELATIVE = "relative", "其他亲属", "Relative"
    OTHER = "other", "其他监护人", "Other guardian"


class Gender(Vocabulary):
    """A person's gender."""

    M = "M", "男", "Male"
    F = "F", "女", "Female"


class SessionMode(Vocabulary):
    """How a parent-school session is held."""

    IN_PERSON = "in_person", "线下", "In person"
    ONLINE = "online", "线上", "Online"
    MIXED = "mixed", "线上线下结合", "Mixed"


class SessionStatus(Vocabulary):
    """Whether a parent-school session has been held."""

    SCHEDULED = "scheduled", "已安排", "Scheduled"
    HELD = "held", "已举办", "Held"


class ImportFormat(Vocabulary):
    """How an import's rows are sent."""

    JSON = "json", "JSON 数据", "JSON"
    CSV = "csv", "CSV 文件", "CSV files"


class ImportStatus(Vocabulary):
    """Where an import job stands."""

    AWAITING_FILES = "awaiting_files", "等待上传文件", "Awaiting files"
    QUEUED = "queued", "排队中", "Queued"
    RUNNING = "running", "导入中", "Running"
    SUCCEEDED = "succeeded", "导入成功", "Succeeded"
    FAILED = "failed", "导入失败", "Failed"


class DuplicateReason(Vocabulary):
    """Why two students may be the same child."""

    SAME_NAME = "same_name", "姓名相同", "Same name"
    SIMILAR_NAME = "similar_name", "姓名相近", "Similar name"
    SAME_BIRTH_DATE = "same_birth_date", "出生日期相同", "Same birth date"
    SAME_COUNTY = "same_county", "同一区县", "Same county"
    SHARED_GUARDIAN_PHONE = "shared_guardian_phone", "监护人电话相同", "Shared guardian phone"
