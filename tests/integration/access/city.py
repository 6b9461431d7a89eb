"""A tiny city for access tests: schools whose ids hold `_` (a LIKE wildcard) next to siblings it would match."""

from __future__ import annotations

from typing import Any

CITY = "/620400"
DISTRICT = "/620400/620402"  # the parent district of the school under test
OTHER_DISTRICT = "/620400/620403"
OWN = f"{DISTRICT}/s_01"  # the school under test
SIBLING = f"{DISTRICT}/sx01"  # matched by `s_01` when `_` is taken as a LIKE wildcard
PERCENT = f"{DISTRICT}/s%"  # a token path holding `%`: must cover nothing that exists
FAR = f"{OTHER_DISTRICT}/s901"
SCHOOLS = {OWN: "s_01", SIBLING: "sx01", FAR: "s901"}


def school_id(path: str) -> str:
    return path.rsplit("/", 1)[1]


def class_id(path: str) -> str:
    return f"{school_id(path)}-g1-c1"


def teacher_id(path: str) -> str:
    return f"t-{school_id(path)}"


def city_json() -> dict[str, Any]:
    """Per school: a grade, a class, a class teacher and a mental-health teacher, a family of two children (parents
    away) and two families of one child; plus a family shared by a child of `s_01` and a child of `s901`."""
    units: list[dict[str, Any]] = [
        {"org_unit_id": "620400", "parent_id": None, "level": "city", "name": "City"},
        {"org_unit_id": "620402", "parent_id": "620400", "level": "district", "name": "D2"},
        {"org_unit_id": "620403", "parent_id": "620400", "level": "district", "name": "D3"},
    ]
    staff, families, guardians, students = [], [], [], []
    for path, sid in SCHOOLS.items():
        district = path.split("/")[2]
        units += [
            {"org_unit_id": sid, "parent_id": district, "level": "school", "name": sid, "school_type": "primary"},
            {"org_unit_id": f"{sid}-g1", "parent_id": sid, "level": "grade", "name": "G1"},
            {"org_unit_id": class_id(path), "parent_id": f"{sid}-g1", "level": "class", "name": "C1"},
        ]
        staff += [
            {
                "staff_id": teacher_id(path),
                "name": "Teacher",
                "org_unit_id": sid,
                "roles": ["class_teacher"],
                "class_ids": [class_id(path)],
                "head_class_id": class_id(path),
            },
            {"staff_id": f"m-{sid}", "name": "Counsellor", "org_unit_id": sid, "roles": ["mental_health_teacher"]},
        ]
        families.append({"family_no": f"F-{sid}", "parents_work_away": True, "living_arrangement": "grandparents"})
        guardians.append(
            {"guardian_no": f"P-{sid}", "family_no": f"F-{sid}", "name": "Gran", "relation": "grandmother"}
        )
        for n in (1, 2):
            students.append(
                {
                    "student_no": f"N-{sid}-{n}",
                    "name": f"Child {n}",
                    "birth_date": "2015-03-01",
                    "class_id": class_id(path),
                    "family_no": f"F-{sid}",
                }
            )
        for extra in ("b", "c"):  # families to schedule, record and remove visits of
            families.append(
                {"family_no": f"F-{sid}-{extra}", "parents_work_away": False, "living_arrangement": "both_parents"}
            )
            students.append(
                {
                    "student_no": f"N-{sid}-{extra}",
                    "name": f"Child {extra}",
                    "birth_date": "2015-04-01",
                    "class_id": class_id(path),
                    "family_no": f"F-{sid}-{extra}",
                }
            )
    families.append({"family_no": "F-shared", "parents_work_away": False, "living_arrangement": "both_parents"})
    guardians.append({"guardian_no": "P-shared", "family_no": "F-shared", "name": "Mum", "relation": "mother"})
    for path in (OWN, FAR):
        students.append(
            {
                "student_no": f"N-{school_id(path)}-shared",
                "name": "Shared",
                "birth_date": "2014-05-01",
                "class_id": class_id(path),
                "family_no": "F-shared",
            }
        )
    return {"org_units": units, "staff": staff, "families": families, "guardians": guardians, "students": students}
