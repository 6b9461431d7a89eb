"""Optimistic concurrency on the real stack: two people edit the same record; the second is told, not overwritten."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shared.testing.fixtures import wait_for
from tests.integration.access import city
from tests.integration.committees.conftest import BUREAU

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def svc(module_svc):
    return module_svc


@pytest.fixture(scope="module")
async def world(svc) -> dict[str, Any]:
    await svc.run_import(body=city.city_json())
    r = await svc.http.get("/api/v1/students", params={"limit": 500}, headers=BUREAU)
    return {s["student_no"]: s for s in r.json()["items"]}


async def test_two_concurrent_patches_one_wins_one_is_412(svc, world) -> None:
    family_id = world["N-s_01-1"]["family_id"]
    r = await svc.http.get(f"/api/v1/families/{family_id}", headers=BUREAU)
    assert r.status_code == 200, r.text
    etag = r.headers["etag"]
    assert etag == f'"{r.json()["version"]}"'
    assert r.json()["address"] != "东路1号" and r.json()["living_arrangement"] != "relatives"
    # Two admins read the same version and change different fields at the same moment (both to values the family
    # does not have yet: a PATCH that changes nothing keeps the version, and the other would rightly win too).
    a, b = await asyncio.gather(
        svc.http.patch(
            f"/api/v1/families/{family_id}", json={"address": "东路1号"}, headers={**BUREAU, "If-Match": etag}
        ),
        svc.http.patch(
            f"/api/v1/families/{family_id}",
            json={"living_arrangement": "relatives"},
            headers={**BUREAU, "If-Match": etag},
        ),
    )
    assert sorted([a.status_code, b.status_code]) == [200, 412], (a.text, b.text)
    won, lost = (a, b) if a.status_code == 200 else (b, a)
    assert won.headers["etag"] == f'"{won.json()["version"]}"' != etag
    assert lost.headers["content-type"] == "application/problem+json"
    assert lost.json()["version"] == won.json()["version"] and lost.headers["etag"] == won.headers["etag"]
    # The loser's change is not stored; the winner's is.
    now = (await svc.http.get(f"/api/v1/families/{family_id}", headers=BUREAU)).json()
    assert now["version"] == won.json()["version"]
    assert (now["address"] == "东路1号") is (won is a)
    # Retried on the current ETag, the loser's change goes through and keeps the winner's.
    again = await svc.http.patch(
        f"/api/v1/families/{family_id}",
        json=({"address": "东路1号"} if lost is a else {"living_arrangement": "relatives"}),
        headers={**BUREAU, "If-Match": lost.headers["etag"]},
    )
    assert again.status_code == 200, again.text
    assert again.json()["address"] == "东路1号" and again.json()["living_arrangement"] == "relatives"


async def test_a_patch_without_if_match_is_428_and_changes_nothing(svc, world) -> None:
    student = world["N-s_01-2"]
    r = await svc.http.patch(f"/api/v1/students/{student['student_id']}", json={"name": "改名"}, headers=BUREAU)
    assert r.status_code == 428, r.text
    assert r.json()["errors"] == [{"pointer": "/header/If-Match", "detail": "required"}]
    after = (await svc.http.get(f"/api/v1/students/{student['student_id']}", headers=BUREAU)).json()
    assert after["name"] != "改名" and after["version"] == student["version"]


async def test_a_state_change_with_a_stale_if_match_is_412(svc, world) -> None:
    staff = (await svc.http.get("/api/v1/staff/t-s_01", headers=BUREAU)).json()
    r = await svc.http.patch(
        "/api/v1/staff/t-s_01", json={"phone": "13900000000"}, headers={**BUREAU, "If-Match": f'"{staff["version"]}"'}
    )
    assert r.status_code == 200 and r.json()["version"] == staff["version"] + 1
    # Someone still holding the old version tries to mark the teacher as left: refused, nothing published.
    r = await svc.http.delete("/api/v1/staff/t-s_01", headers={**BUREAU, "If-Match": f'"{staff["version"]}"'})
    assert r.status_code == 412 and r.json()["version"] == staff["version"] + 1
    assert (await svc.http.get("/api/v1/staff/t-s_01", headers=BUREAU)).json()["active"] is True


async def test_two_concurrent_creates_with_one_national_id_give_one_201_and_one_409(svc, world) -> None:
    """Both creates pass the "is this national ID free?" check before either writes (held at the insert by a share
    lock on students until both wait there): the unique index decides, and the loser is a 409 naming the field."""
    nid = "620402201503010018"
    peer = world["N-s_01-1"]
    body = {"name": "赵小雨", "birth_date": "2015-03-01", "national_id": nid, "class_id": peer["class_id"]}
    body["family_id"] = peer["family_id"]
    conn = await asyncpg.connect(svc.settings.database_url, server_settings={"search_path": svc.settings.db_schema})
    try:
        tx = conn.transaction()
        await tx.start()
        await conn.execute("LOCK TABLE students IN SHARE MODE")  # reads go on, inserts wait
        creates = [
            asyncio.create_task(
                svc.http.post("/api/v1/students", json={**body, "student_no": f"S-race-{n}"}, headers=BUREAU)
            )
            for n in (1, 2)
        ]
        waiting = "SELECT count(*) FROM pg_locks WHERE relation = 'students'::regclass AND NOT granted"
        await wait_for(lambda: conn.fetchval(waiting + " HAVING count(*) >= 2"), timeout=30)
        await tx.rollback()
        a, b = await asyncio.gather(*creates)
    finally:
        await conn.close()
    assert sorted([a.status_code, b.status_code]) == [201, 409], (a.text, b.text)
    lost = a if a.status_code == 409 else b
    assert lost.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in lost.json()["errors"]] == ["/national_id"]
    found = await svc.http.get("/api/v1/students", params={"limit": 500}, headers=BUREAU)
    assert [s["student_no"] for s in found.json()["items"] if s["student_no"].startswith("S-race-")] == [
        (a if lost is b else b).json()["student_no"]
    ]


async def test_cooperation_records_carry_versions_and_a_stale_if_match_changes_nothing(svc, world) -> None:
    """Parent schools and their sessions, instructor teams and their members, lecturers: a GET answers the version
    as an ETag, a state change with a stale If-Match is a 412 with the current version, with the current one it
    goes through (and without one it stays allowed: the server decides against the current state)."""
    school = city.school_id(city.OWN)
    ps = await svc.http.post(
        "/api/v1/parent-schools", json={"org_unit_id": school, "kind": "school", "name": "家长学校"}, headers=BUREAU
    )
    assert ps.status_code == 201 and ps.json()["version"] == 1, ps.text
    base = f"/api/v1/parent-schools/{ps.json()['parent_school_id']}"
    got = await svc.http.get(base, headers=BUREAU)
    assert got.headers["etag"] == '"1"'
    s = await svc.http.post(
        f"{base}/sessions", json={"topic": "阅读", "held_on": "2026-09-01", "mode": "in_person"}, headers=BUREAU
    )
    assert s.status_code == 201, s.text
    session = f"{base}/sessions/{s.json()['session_id']}"
    read = await svc.http.get(session, headers=BUREAU)
    assert read.headers["etag"] == '"1"' == f'"{read.json()["version"]}"'
    stale = await svc.http.post(f"{session}/held", headers={**BUREAU, "If-Match": '"7"'})
    assert stale.status_code == 412 and stale.json()["version"] == 1 and stale.headers["etag"] == '"1"'
    assert (await svc.http.get(session, headers=BUREAU)).json()["status"] == "scheduled"
    held = await svc.http.post(f"{session}/held", headers={**BUREAU, "If-Match": read.headers["etag"]})
    assert held.status_code == 200 and held.json()["version"] == 2 and held.headers["etag"] == '"2"', held.text
    assert (await svc.http.get(session, headers=BUREAU)).headers["etag"] == '"2"'

    team = await svc.http.post(
        "/api/v1/instructor-teams", json={"org_unit_id": school, "name": "指导团队"}, headers=BUREAU
    )
    assert team.status_code == 201 and team.json()["version"] == 1, team.text
    t = f"/api/v1/instructor-teams/{team.json()['team_id']}"
    m = await svc.http.post(f"{t}/members", json={"role": "expert_scholar", "name": "张专家"}, headers=BUREAU)
    assert m.status_code == 201 and m.json()["version"] == 1, m.text
    listed = await svc.http.get(t, headers=BUREAU)
    assert listed.headers["etag"] == '"1"' and [x["version"] for x in listed.json()["members"]] == [1]
    member = f"{t}/members/{m.json()['member_id']}"
    assert (await svc.http.delete(member, headers={**BUREAU, "If-Match": '"2"'})).status_code == 412
    assert len((await svc.http.get(t, headers=BUREAU)).json()["members"]) == 1
    gone = await svc.http.delete(member, headers={**BUREAU, "If-Match": '"1"'})
    assert gone.status_code == 200 and gone.json()["version"] == 2, gone.text

    lec = await svc.http.post("/api/v1/lecturers", json={"org_unit_id": school, "name": "李讲师"}, headers=BUREAU)
    assert lec.status_code == 201 and lec.json()["version"] == 1, lec.text
    one = f"/api/v1/lecturers/{lec.json()['lecturer_id']}"
    refused = await svc.http.delete(one, headers={**BUREAU, "If-Match": '"3"'})
    assert refused.status_code == 412 and refused.json()["version"] == 1
    left = await svc.http.delete(one, headers={**BUREAU, "If-Match": "*"})
    assert left.status_code == 200 and left.json()["version"] == 2, left.text
