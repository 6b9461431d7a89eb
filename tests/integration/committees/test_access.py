"""Access: each role × an org inside and outside its subtree, for reads and writes; personal fields by role."""

from __future__ import annotations

from typing import Any

import pytest

from demo import citygen
from shared.contracts.committees import COMMITTEE
from tests.integration.committees.conftest import BUREAU, auth

pytestmark = pytest.mark.integration

PERSONAL = {"name", "national_id", "student_no", "birth_date", "gender"}
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def svc(module_svc):
    """All access tests share one service and one imported city."""
    return module_svc


@pytest.fixture(scope="module")
async def world(svc, small_city) -> dict[str, Any]:
    """The small city imported; a student in a class of a school of district 620402, and the people around it."""
    city = small_city
    await svc.run_import(body=citygen.to_json(city))
    school = next(u for u in city.org_units if u.level == "school" and u.parent_id == "620402")
    other_school = (
        next(u for u in city.org_units if u.level == "school" and u.parent_id == "620402" and u != school)
        if sum(u.level == "school" and u.parent_id == "620402" for u in city.org_units) > 1
        else next(u for u in city.org_units if u.level == "school" and u.parent_id != "620402")
    )
    teacher = next(s for s in city.staff if s.org_unit_id == school.org_unit_id and s.head_class_id)
    other_teacher = next(
        s
        for s in city.staff
        if s.org_unit_id == school.org_unit_id and s.head_class_id and s.head_class_id != teacher.head_class_id
    )
    # A student of the teacher's class whose family has no child in a class the other teacher teaches: otherwise
    # the other teacher would rightly see the family through that sibling.
    family_classes: dict[str, set[str]] = {}
    for s in city.students:
        family_classes.setdefault(s.family_no, set()).add(s.class_id)
    taught_by_other = {*other_teacher.class_ids, other_teacher.head_class_id}
    pick = next(
        s
        for s in city.students
        if s.class_id == teacher.head_class_id and not family_classes[s.family_no] & taught_by_other
    )
    r = await svc.http.get("/api/v1/students", params={"class_id": teacher.head_class_id, "limit": 500}, headers=BUREAU)
    student = next(s for s in r.json()["items"] if s["student_no"] == pick.student_no)
    inside = [u.org_unit_id for u in city.org_units if u.org_unit_id.startswith(school.org_unit_id + "-")]
    return {
        "inside": inside,
        "student": student,
        "school": f"/620400/620402/{school.org_unit_id}",
        "other_school": f"/620400/{other_school.parent_id}/{other_school.org_unit_id}",
        "teacher": teacher,
        "other_teacher": other_teacher,
    }


def tokens(w: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {
        "none": {},
        "bureau": BUREAU,
        "district_in": auth("district_admin", "/620400/620402"),
        "district_out": auth("district_admin", "/620400/620403"),
        "school_in": auth("school_admin", w["school"]),
        "school_out": auth("school_admin", w["other_school"]),
        "teacher_in": auth("teacher", w["school"], w["teacher"].staff_id),
        "teacher_out": auth("teacher", w["school"], w["other_teacher"].staff_id),
        "mh_teacher_in": auth("mental_health_teacher", w["school"], w["teacher"].staff_id),
        "auditor": auth("auditor", "/620400"),
        "auditor_out": auth("auditor", "/620400/620403"),
        "partner": auth("department_partner", "/620400"),
    }


# role -> (read status, personal fields visible, write status)
CASES = {
    "none": (401, False, 401),
    "bureau": (200, True, 200),
    "district_in": (200, True, 200),
    "district_out": (403, False, 403),
    "school_in": (200, True, 200),
    "school_out": (403, False, 403),
    "teacher_in": (200, True, 403),
    "teacher_out": (403, False, 403),
    "mh_teacher_in": (200, True, 403),
    "auditor": (200, False, 403),
    "auditor_out": (403, False, 403),
    "partner": (403, False, 403),
}


@pytest.mark.parametrize("who", list(CASES))
async def test_student_read_and_write_by_role_and_scope(svc, world, who):
    read, personal, write = CASES[who]
    h = tokens(world)[who]
    sid = world["student"]["student_id"]
    r = await svc.http.get(f"/api/v1/students/{sid}", headers=h)
    assert r.status_code == read, r.text
    if read == 200:
        assert PERSONAL <= set(r.json()) if personal else not (PERSONAL & set(r.json()))
        assert r.json()["student_id"] == sid
    else:
        assert r.headers["content-type"] == PROBLEM and r.json()["status"] == read
        assert "name" not in r.json()
    before = (await svc.http.get(f"/api/v1/students/{sid}", headers=BUREAU)).json()["name"]
    w = await svc.http.patch(f"/api/v1/students/{sid}", json={"name": "新名字"}, headers={**h, "If-Match": "*"})
    assert w.status_code == write, w.text
    after = (await svc.http.get(f"/api/v1/students/{sid}", headers=BUREAU)).json()["name"]
    assert after == ("新名字" if write == 200 else before)
    if write != 200:
        assert w.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("who", list(CASES))
async def test_student_lists_and_families_by_role(svc, world, who):
    read, personal, _ = CASES[who]
    h = tokens(world)[who]
    r = await svc.http.get("/api/v1/students", params={"limit": 500}, headers=h)
    if who in ("none",):
        assert r.status_code == 401
        return
    if who == "partner":
        assert r.status_code == 403
        return
    assert r.status_code == 200
    items = r.json()["items"]
    if who.startswith(("teacher", "mh_teacher")):
        mine = world["teacher"] if who != "teacher_out" else world["other_teacher"]
        assert items and {s["class_id"] for s in items} <= set(mine.class_ids)
        other = await svc.http.get("/api/v1/students", params={"class_id": "s9999-g1-c1"}, headers=h)
        assert other.status_code == 403
    if items:
        assert all(bool(PERSONAL & set(s)) == (who not in ("auditor", "auditor_out")) for s in items)
    fam = await svc.http.get(f"/api/v1/families/{world['student']['family_id']}", headers=h)
    assert fam.status_code == (200 if read == 200 and personal else 403)
    if fam.status_code == 200:
        assert fam.json()["guardians"] and "phone" in fam.json()["guardians"][0]


COMMITTEE_ROLES = [
    "bureau",
    "district_in",
    "district_out",
    "school_in",
    "school_out",
    "teacher_in",
    "auditor",
    "partner",
]


@pytest.mark.parametrize("who", COMMITTEE_ROLES)
async def test_committee_writes_and_reads_by_scope(svc, world, who):
    h = tokens(world)[who]
    school_id = world["school"].rsplit("/", 1)[1]
    unit = world["inside"][COMMITTEE_ROLES.index(who)]  # a grade or class of the school, one per case
    r = await svc.http.post("/api/v1/committees", json={"org_unit_id": unit, "formed_on": "2026-09-01"}, headers=h)
    expect = 201 if who in ("bureau", "district_in", "school_in") else 403
    assert r.status_code == expect, r.text
    r = await svc.http.get("/api/v1/committees", params={"under": school_id}, headers=h)
    assert r.status_code == (200 if who in ("bureau", "district_in", "school_in", "teacher_in", "auditor") else 403)
    await svc.drained()
    formed = [e for e in await svc.events([COMMITTEE]) if e["type"] == "committees.committee.formed.v1"]
    assert len([e for e in formed if e["data"]["org_unit_id"] == unit]) == (1 if expect == 201 else 0)


async def test_a_family_without_children_belongs_to_the_unit_that_registered_it(svc, world):
    """Not to any admin: before, any school admin could link a child to another school's new family and then read
    its guardians through that child; and the school that registered it could not read it back."""
    t = tokens(world)
    family = {"family_no": "F-REG-1", "parents_work_away": True, "living_arrangement": "grandparents"}
    family["guardians"] = [
        {"guardian_no": "G-REG-1", "name": "王芳", "relation": "grandmother", "phone": "13800000001"}
    ]
    r = await svc.http.post("/api/v1/families", json=family, headers=t["school_in"])
    assert r.status_code == 201, r.text
    family_id = r.json()["family_id"]
    for who, status in {
        "school_in": 200,
        "district_in": 200,
        "bureau": 200,
        "school_out": 403,
        "district_out": 403,
    }.items():
        got = await svc.http.get(f"/api/v1/families/{family_id}", headers=t[who])
        assert got.status_code == status, (who, got.text)
    patch = await svc.http.patch(
        f"/api/v1/families/{family_id}", json={"address": "x"}, headers={**t["school_out"], "If-Match": "*"}
    )
    assert patch.status_code == 403
    # Another school's admin cannot tie a child of theirs to it (which would open its guardians to them).
    other_class = await svc.http.get(
        "/api/v1/students", params={"under": world["other_school"].rsplit("/", 1)[-1], "limit": 1}, headers=BUREAU
    )
    child = {"name": "李明", "birth_date": "2015-03-01", "family_id": family_id}
    out = await svc.http.post(
        "/api/v1/students",
        json={**child, "student_no": "S-REG-OUT", "class_id": other_class.json()["items"][0]["class_id"]},
        headers=t["school_out"],
    )
    assert out.status_code == 403, out.text
    # The registering school links its own pupil.
    mine = await svc.http.post(
        "/api/v1/students",
        json={**child, "student_no": "S-REG-IN", "class_id": world["teacher"].head_class_id},
        headers=t["school_in"],
    )
    assert mine.status_code == 201, mine.text
    assert (await svc.http.get(f"/api/v1/families/{family_id}", headers=t["school_out"])).status_code == 403
