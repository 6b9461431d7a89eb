"""Access through HTTP: teachers only their assignments, school and district admins their subtree."""

from __future__ import annotations

import pytest

from tests.integration.visits.conftest import DISTRICT, TODAY, Env, bearer, completed

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
S1 = f"{DISTRICT}/620402s1"
S2 = f"{DISTRICT}/620402s2"
OTHER_DISTRICT = "/620400/620403"


async def test_callers_without_a_valid_token_get_401_problem_json(env: Env):
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic abc"}):
        r = await env.http.get("/api/v1/campaigns", headers=headers)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
        assert r.json()["status"] == 401


async def test_teachers_and_admins_see_and_change_only_their_part(env: Env):
    campaign = {"name": "x", "org_path": DISTRICT, "starts_on": TODAY.isoformat(), "ends_on": TODAY.isoformat()}
    teacher_id = "t-620402s1g1c1"
    teacher = bearer("teacher", S1, teacher_id)
    s1_admin = bearer("school_admin", S1)
    r = await env.http.post("/api/v1/campaigns", json=campaign, headers=teacher)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await env.http.post("/api/v1/campaigns", json=campaign, headers=s1_admin)
    assert r.status_code == 403  # a school admin cannot run a district-wide campaign
    r = await env.http.post("/api/v1/campaigns", json=campaign, headers=bearer("district_admin", OTHER_DISTRICT))
    assert r.status_code == 403

    cid = (await env.launch())["campaign_id"]
    rows = await env.assignments(cid)
    mine = [r for r in rows if r["teacher_id"] == teacher_id]
    theirs = next(r for r in rows if r["teacher_id"] != teacher_id and r["org_path"].startswith(S1))
    in_s2 = next(r for r in rows if r["org_path"].startswith(S2))

    r = await env.http.post(f"/api/v1/campaigns/{cid}/close", headers=bearer("district_admin", OTHER_DISTRICT))
    assert r.status_code == 403
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress", headers=bearer("district_admin", OTHER_DISTRICT))
    assert r.status_code == 403
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by=teacher", headers=teacher)
    assert r.status_code == 200  # a teacher's progress covers only their own assignments
    assert [u["key"] for u in r.json()["units"]] == [teacher_id]
    assert r.json()["totals"]["assigned"] == len(mine)

    # Teachers: their own families only; they record only their own assignments.
    r = await env.http.get(f"/api/v1/campaigns/{cid}/assignments", headers=teacher)
    assert r.status_code == 200
    assert {i["assignment_id"] for i in r.json()["items"]} == {m["assignment_id"] for m in mine}
    r = await env.http.get(f"/api/v1/campaigns/{cid}/assignments?teacher_id={theirs['teacher_id']}", headers=teacher)
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await env.http.post("/api/v1/visits", json=completed(theirs["assignment_id"]), headers=teacher)
    assert r.status_code == 403
    r = await env.http.post("/api/v1/visits", json=completed(mine[0]["assignment_id"]), headers=teacher)
    assert r.status_code == 201
    own_visit = r.json()["visit_id"]

    # School admins: record for their staff, not for another school; see their school's progress only.
    r = await env.http.post("/api/v1/visits", json=completed(theirs["assignment_id"]), headers=s1_admin)
    assert r.status_code == 201
    their_visit = r.json()["visit_id"]
    r = await env.http.post("/api/v1/visits", json=completed(in_s2["assignment_id"]), headers=s1_admin)
    assert r.status_code == 403
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress", headers=s1_admin)
    assert r.status_code == 200
    assert [u["org_path"] for u in r.json()["units"]] == [S1]
    assert r.json()["totals"]["completed"] == 2
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?org_path={S2}", headers=s1_admin)
    assert r.status_code == 403
    r = await env.http.get(f"/api/v1/campaigns/{cid}/assignments", headers=bearer("school_admin", S2))
    assert {i["org_path"].startswith(S2) for i in r.json()["items"]} == {True}

    # Visit detail: the teacher their own, admins their subtree.
    assert (await env.http.get(f"/api/v1/visits/{own_visit}", headers=teacher)).status_code == 200
    assert (await env.http.get(f"/api/v1/visits/{their_visit}", headers=teacher)).status_code == 403
    assert (await env.http.get(f"/api/v1/visits/{their_visit}", headers=bearer("school_admin", S2))).status_code == 403
    assert (
        await env.http.get(f"/api/v1/visits/{their_visit}", headers=bearer("district_admin", DISTRICT))
    ).status_code == 200

    # Hand adjustments: admins of the assignment's school only.
    r = await env.http.delete(f"/api/v1/assignments/{in_s2['assignment_id']}", headers=s1_admin)
    assert r.status_code == 403
    r = await env.http.delete(f"/api/v1/assignments/{in_s2['assignment_id']}", headers=teacher)
    assert r.status_code == 403
    assert await env.count("assignments", "status = 'removed'") == 0
