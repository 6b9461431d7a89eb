"""Every committees route that returns personal data writes exactly one audit row per call; auditors see theirs."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from demo import citygen
from tests.audit_coverage import Call, Route, assert_each_audited
from tests.integration.committees.conftest import BUREAU, Svc, auth

pytestmark = pytest.mark.integration


def _calls(school: str, cls: str, nid: str) -> dict[Route, Call]:
    """How to exercise each personal route (in this order: writes create what the reads read)."""

    def r(method: str, path: str) -> Route:
        return ("committees", method, path)

    async def create_staff(h: httpx.AsyncClient, ids: dict[str, Any]) -> httpx.Response:
        body = {"staff_id": "T-aud-1", "name": "王老师", "phone": "13800000000", "org_unit_id": school}
        return await h.post("/api/v1/staff", json={**body, "roles": ["class_teacher"]}, headers=BUREAU)

    async def create_family(h: httpx.AsyncClient, ids: dict[str, Any]) -> httpx.Response:
        guardian = {"guardian_no": "G-aud-1", "name": "李母", "relation": "mother", "phone": "13900000000"}
        body = {"family_no": "F-aud-1", "parents_work_away": True, "living_arrangement": "grandparents"}
        resp = await h.post("/api/v1/families", json={**body, "guardians": [guardian]}, headers=BUREAU)
        ids["family"] = resp.json()["family_id"]
        return resp

    async def create_student(h: httpx.AsyncClient, ids: dict[str, Any]) -> httpx.Response:
        body = {"student_no": "S-aud-1", "name": "李小明", "birth_date": _birth(nid), "national_id": nid}
        resp = await h.post(
            "/api/v1/students", json={**body, "class_id": cls, "family_id": ids["family"]}, headers=BUREAU
        )
        assert resp.status_code == 201, resp.text
        ids["student"] = resp.json()["student_id"]
        return resp

    async def merge_student(h: httpx.AsyncClient, ids: dict[str, Any]) -> httpx.Response:
        body = {"student_no": "S-aud-2", "name": "李晓明", "birth_date": _birth(nid), "class_id": cls}
        dup = await h.post("/api/v1/students", json={**body, "family_id": ids["family"]}, headers=BUREAU)
        assert dup.status_code == 201, dup.text
        assert [c["student_id"] for c in dup.json()["duplicate_candidates"]] == [ids["student"]]
        merge = {"duplicate_id": dup.json()["student_id"]}
        return await h.post(f"/api/v1/students/{ids['student']}/merge", json=merge, headers=BUREAU)

    async def read_committee(h: httpx.AsyncClient, ids: dict[str, Any]) -> httpx.Response:
        c = await h.post("/api/v1/committees", json={"org_unit_id": school, "formed_on": "2026-09-01"}, headers=BUREAU)
        assert c.status_code == 201, c.text
        guardian = (await h.get(f"/api/v1/families/{ids['family']}", headers=BUREAU)).json()["guardians"][0]
        m = {"guardian_id": guardian["guardian_id"], "term_start": "2026-09-01"}
        cid = c.json()["committee_id"]
        assert (await h.post(f"/api/v1/committees/{cid}/members", json=m, headers=BUREAU)).status_code == 201
        return await h.get(f"/api/v1/committees/{cid}", headers=BUREAU)

    async def add_team_member(h: httpx.AsyncClient, ids: dict[str, Any]) -> httpx.Response:
        t = await h.post("/api/v1/instructor-teams", json={"org_unit_id": school, "name": "指导团队"}, headers=BUREAU)
        assert t.status_code == 201, t.text
        ids["team"] = t.json()["team_id"]
        body = {"role": "expert_scholar", "name": "张专家"}
        return await h.post(f"/api/v1/instructor-teams/{ids['team']}/members", json=body, headers=BUREAU)

    return {
        r("POST", "/api/v1/staff"): create_staff,
        r("PATCH", "/api/v1/staff/{staff_id}"): lambda h, ids: h.patch(
            "/api/v1/staff/T-aud-1", json={"phone": "13800000001"}, headers={**BUREAU, "If-Match": "*"}
        ),
        r("GET", "/api/v1/staff/{staff_id}"): lambda h, ids: h.get("/api/v1/staff/T-aud-1", headers=BUREAU),
        r("GET", "/api/v1/staff"): lambda h, ids: h.get("/api/v1/staff", params={"under": school}, headers=BUREAU),
        r("POST", "/api/v1/families"): create_family,
        r("POST", "/api/v1/families/{family_id}/guardians"): lambda h, ids: h.post(
            f"/api/v1/families/{ids['family']}/guardians",
            json={"guardian_no": "G-aud-2", "name": "李父", "relation": "father"},
            headers=BUREAU,
        ),
        r("PATCH", "/api/v1/families/{family_id}"): lambda h, ids: h.patch(
            f"/api/v1/families/{ids['family']}",
            json={"address": "白银区人民路1号"},
            headers={**BUREAU, "If-Match": "*"},
        ),
        r("POST", "/api/v1/students"): create_student,
        r("PATCH", "/api/v1/students/{student_id}"): lambda h, ids: h.patch(
            f"/api/v1/students/{ids['student']}", json={"gender": "M"}, headers={**BUREAU, "If-Match": "*"}
        ),
        r("GET", "/api/v1/students/{student_id}"): lambda h, ids: h.get(
            f"/api/v1/students/{ids['student']}", headers=BUREAU
        ),
        r("GET", "/api/v1/students"): lambda h, ids: h.get(
            "/api/v1/students", params={"class_id": cls}, headers=BUREAU
        ),
        r("POST", "/api/v1/students/{student_id}/merge"): merge_student,
        r("GET", "/api/v1/families/{family_id}"): lambda h, ids: h.get(
            f"/api/v1/families/{ids['family']}", headers=BUREAU
        ),
        r("GET", "/api/v1/committees/{committee_id}"): read_committee,
        r("POST", "/api/v1/instructor-teams/{team_id}/members"): add_team_member,
        r("GET", "/api/v1/instructor-teams/{team_id}"): lambda h, ids: h.get(
            f"/api/v1/instructor-teams/{ids['team']}", headers=BUREAU
        ),
        r("POST", "/api/v1/lecturers"): lambda h, ids: h.post(
            "/api/v1/lecturers", json={"org_unit_id": school, "name": "赵讲师"}, headers=BUREAU
        ),
        r("GET", "/api/v1/lecturers"): lambda h, ids: h.get(
            "/api/v1/lecturers", params={"under": school}, headers=BUREAU
        ),
    }


def _birth(nid: str) -> str:
    return f"{nid[6:10]}-{nid[10:12]}-{nid[12:14]}"


async def _audit_rows(svc: Svc) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(svc.settings.database_url)
    try:
        return await conn.fetch(f'SELECT * FROM "{svc.settings.db_schema}".audit_reads ORDER BY id')
    finally:
        await conn.close()


async def _city(svc: Svc, small_city: citygen.City) -> tuple[str, str, str, str]:
    """Import only the org tree; a primary school, one of its classes and the school's org path."""
    await svc.run_import(body={"org_units": citygen.to_json(small_city)["org_units"]})
    school = next(u for u in small_city.org_units if u.level == "school")
    cls = next(u for u in small_city.org_units if u.level == "class" and u.org_unit_id.startswith(school.org_unit_id))
    path = (await svc.http.get(f"/api/v1/org-units/{school.org_unit_id}", headers=BUREAU)).json()["org_path"]
    nid = small_city.students[0].national_id
    assert nid
    return school.org_unit_id, cls.org_unit_id, path, nid


async def test_every_personal_route_writes_exactly_one_audit_row(svc: Svc, small_city: citygen.City):
    school, cls, school_path, nid = await _city(svc, small_city)
    rows = await assert_each_audited(
        "committees", _calls(school, cls, nid), svc.http, svc.settings.database_url, svc.settings.db_schema
    )
    for route, row in rows.items():
        # The subject's org path (a family without students yet: the creator's own unit, here the city).
        assert row["org_path"].startswith(school_path) or row["org_path"] == "/620400", (route, row["org_path"])


async def test_refused_reads_write_no_audit_row_and_auditors_see_only_their_subtree(svc: Svc, small_city: citygen.City):
    school, cls, school_path, nid = await _city(svc, small_city)
    calls = _calls(school, cls, nid)
    ids: dict[str, Any] = {}
    for route in [("committees", "POST", "/api/v1/families"), ("committees", "POST", "/api/v1/students")]:
        assert (await calls[route](svc.http, ids)).status_code == 201
    other_school = next(u for u in small_city.org_units if u.level == "school" and u.org_unit_id != school)
    other_path = (await svc.http.get(f"/api/v1/org-units/{other_school.org_unit_id}", headers=BUREAU)).json()[
        "org_path"
    ]
    before = len(await _audit_rows(svc))
    outsider = auth("school_admin", other_path)
    assert (await svc.http.get(f"/api/v1/students/{ids['student']}", headers=outsider)).status_code == 403
    assert (await svc.http.get(f"/api/v1/families/{ids['family']}", headers=outsider)).status_code == 403
    assert len(await _audit_rows(svc)) == before  # nothing was disclosed, nothing to audit

    insider = auth("school_admin", school_path)
    assert (await svc.http.get(f"/api/v1/students/{ids['student']}", headers=insider)).status_code == 200
    mine = auth("auditor", school_path)
    reads = "/api/v1/audit/committees/reads"
    log = (await svc.http.get(reads, headers=mine, params={"person_id": ids["student"]})).json()["items"]
    assert [(e["action"], e["resource_type"]) for e in log] == [("read", "student"), ("write", "student")]
    assert log[0]["roles"] == ["school_admin"] and log[0]["reader_path"] == school_path
    theirs = auth("auditor", other_path)
    assert (await svc.http.get("/api/v1/audit/committees/reads", headers=theirs)).json()["items"] == []
    assert (await svc.http.get("/api/v1/audit/committees/reads", headers=insider)).status_code == 403


async def test_a_read_whose_audit_row_cannot_be_written_fails_and_discloses_nothing(svc: Svc, small_city: citygen.City):
    school, cls, _, nid = await _city(svc, small_city)
    calls = _calls(school, cls, nid)
    ids: dict[str, Any] = {}
    for route in [("committees", "POST", "/api/v1/families"), ("committees", "POST", "/api/v1/students")]:
        assert (await calls[route](svc.http, ids)).status_code == 201
    conn = await asyncpg.connect(svc.settings.database_url)
    try:
        # Every new audit row now fails (as it would with the audit table unwritable).
        await conn.execute(
            f'ALTER TABLE "{svc.settings.db_schema}".audit_reads ADD CONSTRAINT refuse CHECK (false) NOT VALID'
        )
        for path in (f"/api/v1/students/{ids['student']}", f"/api/v1/families/{ids['family']}", "/api/v1/students"):
            resp = await svc.http.get(path, headers=BUREAU)
            assert resp.status_code == 500, (path, resp.status_code)
            assert "李小明" not in resp.text and "李母" not in resp.text
            assert resp.headers["content-type"].startswith("application/problem+json")
    finally:
        await conn.close()


async def test_a_replayed_answer_with_personal_data_is_audited_like_the_first(svc: Svc, small_city: citygen.City):
    school, cls, _, nid = await _city(svc, small_city)
    calls = _calls(school, cls, nid)
    ids: dict[str, Any] = {}
    assert (await calls[("committees", "POST", "/api/v1/families")](svc.http, ids)).status_code == 201
    body = {"student_no": "S-aud-9", "name": "王小红", "birth_date": _birth(nid), "national_id": nid}
    body |= {"class_id": cls, "family_id": ids["family"]}
    headers = {**BUREAU, "Idempotency-Key": "enrol-S-aud-9"}
    first = await svc.http.post("/api/v1/students", json=body, headers=headers)
    again = await svc.http.post("/api/v1/students", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["name"] == "王小红"
    rows = await _audit_rows(svc)
    for resp in (first, again):
        mine = [r for r in rows if r["request_id"] == resp.headers["x-request-id"]]
        assert [(r["action"], r["resource_id"]) for r in mine] == [("write", first.json()["student_id"])]
