"""Directory writes through HTTP: the events each publishes (type, key, payload) and none for rejected writes."""

from __future__ import annotations

import asyncpg
import pytest

from services.committees.store import directory
from shared.testing.plans import Statements, generic_plan, kinds, nodes
from tests.integration.committees.conftest import BUREAU, auth

pytestmark = pytest.mark.integration

D = "/620400/620402"
SCHOOL = {"org_unit_id": "s1", "parent_id": "620402", "level": "school", "name": "白银区一小", "school_type": "primary"}


async def seed_tree(svc) -> None:
    """City, district, a school with one grade and two classes, through a JSON import."""
    await svc.run_import(
        body={
            "org_units": [
                {"org_unit_id": "620400", "level": "city", "name": "白银市"},
                {"org_unit_id": "620402", "parent_id": "620400", "level": "district", "name": "白银区"},
                {"org_unit_id": "620403", "parent_id": "620400", "level": "district", "name": "平川区"},
            ]
        }
    )


def of(events, type_):
    return [e for e in events if e["type"] == type_]


async def test_directory_writes_publish_their_events(svc):
    await seed_tree(svc)
    h = auth("district_admin", D)
    r = await svc.http.post("/api/v1/org-units", json=SCHOOL, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["org_path"] == f"{D}/s1"
    for uid, parent, level, name in [("s1-g1", "s1", "grade", "一年级"), ("s1-g1-c1", "s1-g1", "class", "1班")]:
        r = await svc.http.post(
            "/api/v1/org-units", json={"org_unit_id": uid, "parent_id": parent, "level": level, "name": name}, headers=h
        )
        assert r.status_code == 201, r.text
    r = await svc.http.post(
        "/api/v1/org-units",
        json={"org_unit_id": "s1-g1-c2", "parent_id": "s1-g1", "level": "class", "name": "2班"},
        headers=h,
    )
    assert r.status_code == 201
    staff = {
        "staff_id": "t1",
        "name": "李老师",
        "phone": "13800000001",
        "org_unit_id": "s1",
        "roles": ["class_teacher", "subject_teacher"],
        "class_ids": [],
        "head_class_id": "s1-g1-c1",
    }
    r = await svc.http.post("/api/v1/staff", json=staff, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["class_ids"] == ["s1-g1-c1"]
    fam = {
        "family_no": "F1",
        "parents_work_away": True,
        "living_arrangement": "grandparents",
        "address": "人民路1号",
        "guardians": [{"guardian_no": "P1", "name": "王奶奶", "relation": "grandmother", "phone": "13900000001"}],
    }
    r = await svc.http.post("/api/v1/families", json=fam, headers=h)
    assert r.status_code == 201, r.text
    family_id = r.json()["family_id"]
    guardian_id = r.json()["guardians"][0]["guardian_id"]
    stu = {
        "student_no": "G1",
        "name": "王小明",
        "gender": "M",
        "birth_date": "2018-05-01",
        "class_id": "s1-g1-c1",
        "family_id": family_id,
    }
    r = await svc.http.post("/api/v1/students", json=stu, headers=h)
    assert r.status_code == 201, r.text
    student_id = r.json()["student_id"]
    assert student_id not in ("G1",) and len(student_id) == 36  # pseudonymous, not the bureau's number
    r = await svc.http.patch(
        f"/api/v1/students/{student_id}", json={"class_id": "s1-g1-c2"}, headers={**h, "If-Match": "*"}
    )
    assert r.status_code == 200 and r.json()["org_path"] == f"{D}/s1/s1-g1/s1-g1-c2"
    r = await svc.http.patch(f"/api/v1/students/{student_id}", json={"name": "王晓明"}, headers={**h, "If-Match": "*"})
    assert r.status_code == 200  # a personal correction: stored, nothing published
    r = await svc.http.patch(
        f"/api/v1/families/{family_id}",
        json={"parents_work_away": False, "living_arrangement": "both_parents"},
        headers={**h, "If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    r = await svc.http.delete(f"/api/v1/students/{student_id}", headers=h)
    assert r.status_code == 200
    r = await svc.http.delete("/api/v1/staff/t1", headers=h)
    assert r.status_code == 200

    # Rejected writes publish nothing.
    bad = [
        await svc.http.post(
            "/api/v1/org-units", json={**SCHOOL, "org_unit_id": "s2", "parent_id": "620403"}, headers=h
        ),
        await svc.http.post("/api/v1/org-units", json=SCHOOL, headers=h),
        await svc.http.post("/api/v1/org-units", json={**SCHOOL, "org_unit_id": "s3", "school_type": None}, headers=h),
        await svc.http.post("/api/v1/students", json={**stu, "student_no": "G2", "class_id": "s1-g1"}, headers=h),
        await svc.http.post("/api/v1/students", json={**stu, "student_no": "G3", "national_id": "123"}, headers=h),
        await svc.http.post("/api/v1/staff", json={**staff, "staff_id": "t2", "head_class_id": "s9"}, headers=h),
    ]
    assert [b.status_code for b in bad] == [403, 409, 422, 422, 422, 422]
    assert all(b.headers["content-type"] == "application/problem+json" for b in bad)
    assert bad[2].json()["errors"][0]["pointer"] == "/school_type"
    assert bad[3].json()["errors"][0]["pointer"] == "/class_id"
    assert bad[4].json()["errors"][0]["pointer"] == "/national_id"
    assert bad[5].json()["errors"][0]["pointer"] == "/head_class_id"

    await svc.drained()
    events = [e for e in await svc.events() if e["key"] not in ("620400", "620402", "620403")]
    types = [e["type"] for e in events]
    assert sorted(types) == sorted(
        ["committees.org_unit.registered.v1"] * 4
        + ["committees.staff.registered.v1", "committees.staff.left.v1"]
        + ["committees.family.registered.v1"]  # family with its guardian
        + ["committees.student.registered.v1", "committees.family.changed.v1"]  # the student joins the family
        + ["committees.student.changed.v1"]  # moved class (the rename publishes nothing)
        + ["committees.family.changed.v1"]  # parents back home
        + ["committees.student.left.v1", "committees.family.changed.v1"]  # left: the family has no student
    )
    school = next(e for e in of(events, "committees.org_unit.registered.v1") if e["key"] == "s1")
    assert school["data"] == {**SCHOOL, "org_path": f"{D}/s1", "occurred_at": school["data"]["occurred_at"]}
    (reg,) = of(events, "committees.staff.registered.v1")
    assert reg["key"] == "t1"
    assert reg["data"]["roles"] == ["class_teacher", "subject_teacher"]
    assert reg["data"]["head_class_id"] == "s1-g1-c1" and reg["data"]["class_ids"] == ["s1-g1-c1"]
    (sreg,) = of(events, "committees.student.registered.v1")
    assert sreg["key"] == student_id
    assert sreg["data"] == {
        "student_id": student_id,
        "class_id": "s1-g1-c1",
        "org_path": f"{D}/s1/s1-g1/s1-g1-c1",
        "family_id": family_id,
        "occurred_at": sreg["data"]["occurred_at"],
    }
    (moved,) = of(events, "committees.student.changed.v1")
    assert moved["data"]["class_id"] == "s1-g1-c2"
    fams = of(events, "committees.family.registered.v1") + of(events, "committees.family.changed.v1")
    assert [(f["data"]["student_ids"], f["data"]["guardian_ids"], f["data"]["parents_work_away"]) for f in fams] == [
        ([], [guardian_id], True),
        ([student_id], [guardian_id], True),
        ([student_id], [guardian_id], False),
        ([], [guardian_id], False),
    ]
    assert all(f["key"] == family_id for f in fams)
    for e in events:
        assert "王" not in str(e["envelope"]) and "13900000001" not in str(e["envelope"])


async def test_cursor_pagination_and_filters(svc, small_city):
    await svc.run_import(body=__import__("demo.citygen", fromlist=["to_json"]).to_json(small_city))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 150, **({"cursor": cursor} if cursor else {})}
        r = await svc.http.get("/api/v1/students", params=params, headers=BUREAU)
        assert r.status_code == 200
        seen += [s["student_id"] for s in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == len(small_city.students)
    r = await svc.http.get("/api/v1/staff", params={"role": "mental_health_teacher", "limit": 500}, headers=BUREAU)
    expected = sum("mental_health_teacher" in s.roles for s in small_city.staff)
    assert len(r.json()["items"]) == expected
    school = next(u for u in small_city.org_units if u.level == "school")
    r = await svc.http.get("/api/v1/students", params={"under": school.org_unit_id, "limit": 500}, headers=BUREAU)
    classes = {u.org_unit_id for u in small_city.org_units if u.org_unit_id.startswith(school.org_unit_id + "-")}
    assert len(r.json()["items"]) == min(500, sum(s.class_id in classes for s in small_city.students))
    r = await svc.http.get("/api/v1/students", params={"cursor": "!!"}, headers=BUREAU)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/cursor"


@pytest.mark.parametrize("listed", ["a class", "a later page of the city"])
async def test_a_student_list_reads_its_rows_from_an_index_however_large_the_city(svc, listed: str):
    """In the generic plan (what a pooled connection runs after five executions) a teacher's class list reads that
    class's rows and a later page starts at its cursor: no scan of every student. With `($n IS NULL OR ...)` for
    each filter, both walked the whole table in id order (240 ms a list among the city's 200,000 students)."""
    conn = await asyncpg.connect(svc.settings.database_url)
    try:
        schema = svc.settings.db_schema
        await conn.execute(
            f'INSERT INTO "{schema}".students (student_id, student_no, name, class_id, org_path, family_id)'
            " SELECT 'st' || lpad(i::text, 6, '0'), 'no' || i, 'x', 'c' || (i % 1500),"
            " '/620400/620402/c' || (i % 1500), 'f' || i FROM generate_series(1, 30000) i"
        )
        await conn.execute(f'ANALYZE "{schema}".students')
        composed = Statements()
        if listed == "a class":
            await directory.list_students(composed, "/620400", ["c7"], None, 51)
        else:
            await directory.list_students(composed, "/620400", None, "st020000", 501)
        plan = await generic_plan(conn, schema, composed.sql, composed.args)
    finally:
        await conn.close()
    scans = [n for n in nodes(plan) if "Index Cond" in n or "Recheck Cond" in n]
    conditions = " ".join(n.get("Index Cond", n.get("Recheck Cond", "")) for n in scans)
    assert ("class_id = ANY" if listed == "a class" else "student_id >") in conditions, kinds(plan)


async def test_openapi_lists_the_api(svc):
    doc = (await svc.http.get("/openapi.json")).json()
    for path in ["/api/v1/imports", "/api/v1/imports/csv", "/api/v1/students/{student_id}", "/api/v1/committees"]:
        assert path in doc["paths"]
