"""Progress for everyone through HTTP: per teacher, class, grade, school and district against the campaign's plan
(behind schedule), a teacher's own `GET /me/assignments` (done out of target, what is left), scope-checked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.visits.conftest import DISTRICT, TODAY, Env, bearer, completed

pytestmark = pytest.mark.integration

S1 = f"{DISTRICT}/620402s1"
S2 = f"{DISTRICT}/620402s2"
GRADE1 = f"{S1}/620402s1g1"
FAST, SLOW = "t-620402s1g1c1", "t-620402s1g1c2"  # two class teachers of school 1


async def test_progress_by_every_level_shows_who_is_behind_the_plan_and_teachers_see_their_own(env: Env):
    # Day 11 of 20: every unit is expected to have done 11/20 of its visits by today (rounded down).
    launched = await env.launch(
        starts_on=(TODAY - timedelta(days=10)).isoformat(), ends_on=(TODAY + timedelta(days=9)).isoformat()
    )
    cid = launched["campaign_id"]
    rows = await env.assignments(cid)
    fast = [r for r in rows if r["teacher_id"] == FAST]
    slow = [r for r in rows if r["teacher_id"] == SLOW]
    assert len(fast) >= 4 and len(slow) >= 4
    fast_headers, slow_headers = bearer("teacher", S1, FAST), bearer("teacher", S1, SLOW)
    for a in fast:  # the fast teacher visits every family; the slow one none yet
        r = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"]), headers=fast_headers)
        assert r.status_code == 201, r.text

    admin = bearer("district_admin", DISTRICT)
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by=teacher", headers=admin)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["today"] == TODAY.isoformat()
    units = {u["key"]: u for u in doc["units"]}
    assert len(units) == len({r["teacher_id"] for r in rows})
    f, s = units[FAST], units[SLOW]
    assert (f["assigned"], f["completed"], f["expected"], f["behind"]) == (
        len(fast),
        len(fast),
        len(fast) * 11 // 20,
        False,
    )
    assert (s["assigned"], s["completed"], s["expected"], s["behind"]) == (len(slow), 0, len(slow) * 11 // 20, True)
    assert s["behind_by"] == len(slow) * 11 // 20 and s["org_path"] == S1
    assert doc["behind"] == sum(1 for u in doc["units"] if u["behind"]) >= 1

    for level, keys in (
        ("class", {r["org_path"] for r in rows}),
        ("grade", {"/".join(r["org_path"].split("/")[:5]) for r in rows}),
        ("school", {r["school_path"] for r in rows}),
        ("district", {DISTRICT}),
    ):
        r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by={level}", headers=admin)
        assert r.status_code == 200, r.text
        assert {u["key"] for u in r.json()["units"]} == keys, level
        assert r.json()["totals"]["completed"] == len(fast), level
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by=grade&org_path={S1}", headers=admin)
    assert [(u["key"], u["completed"]) for u in r.json()["units"]] == [(GRADE1, len(fast))]

    # Scope: a school admin sees their school's teachers only; a teacher only their own assignments.
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by=teacher", headers=bearer("school_admin", S2))
    assert {u["org_path"] for u in r.json()["units"]} == {S2}
    r = await env.http.get(
        f"/api/v1/campaigns/{cid}/progress?by=teacher&org_path={S1}", headers=bearer("school_admin", S2)
    )
    assert r.status_code == 403
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by=school", headers=slow_headers)
    assert [(u["key"], u["assigned"], u["behind"]) for u in r.json()["units"]] == [(S1, len(slow), True)]
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by=teacher", headers=bearer("teacher", S1))
    assert r.status_code == 403  # a teacher's token without a staff id names nobody

    # A teacher's own work: done out of target, what is left, the families still to visit.
    r = await env.http.get("/api/v1/me/assignments", headers=slow_headers)
    assert r.status_code == 200, r.text
    [mine] = [c for c in r.json()["campaigns"] if c["campaign_id"] == cid]
    assert (mine["target"], mine["done"], mine["left"], mine["behind"]) == (len(slow), 0, len(slow), True)
    assert {a["assignment_id"] for a in r.json()["open"]} == {a["assignment_id"] for a in slow}
    r = await env.http.get("/api/v1/me/assignments", headers=fast_headers)
    [mine] = [c for c in r.json()["campaigns"] if c["campaign_id"] == cid]
    assert (mine["target"], mine["done"], mine["left"], mine["behind"]) == (len(fast), len(fast), 0, False)
    assert r.json()["open"] == []
    r = await env.http.get("/api/v1/me/assignments", headers=bearer("school_admin", S1))
    assert r.status_code == 403
