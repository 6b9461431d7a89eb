"""Campaigns through HTTP against the real stack: launch generates assignments from the directory copy."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from services.visits.store.directory import TEACHING_ROLES
from services.visits.usecases import campaigns
from shared.contracts.visits import ASSIGNMENT, CAMPAIGN
from tests.integration.visits.conftest import DISTRICT, TODAY, Env, bearer

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("chunk", [campaigns.LAUNCH_CHUNK, 5], ids=["one chunk", "in chunks of 5"])
async def test_launching_a_campaign_assigns_every_family_of_the_district_once_and_publishes_it(
    env: Env, chunk: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(campaigns, "LAUNCH_CHUNK", chunk)  # a city launch writes many chunks in one transaction
    d = env.directory
    in_scope = {f: kids for f, kids in d.families.items() if f.startswith("f-620402")}
    assert len(in_scope) == 2 * (3 * 12 + 1)

    launched = await env.launch()
    cid = launched["campaign_id"]
    assert launched["status"] == "launched"
    assert launched["checklist_version"] == "2026.1"
    assert launched["assignments"] == len(in_scope)
    assert launched["unassigned_family_ids"] == []

    rows = await env.assignments(cid)
    assert sorted(r["family_id"] for r in rows) == sorted(in_scope)
    loads = Counter(r["teacher_id"] for r in rows)
    # 37 families per school: each class teacher takes 10 of their class, the 7 left go to subject teachers.
    assert set(loads) == {t for t, school in d.teachers.items() if school.startswith(DISTRICT)}
    assert sorted(loads.values()) == [3, 3, 4, 4] + [10] * 6
    assert not any(t.startswith("p-") for t in loads)  # principals visit nobody
    for r in rows:  # class teachers visit families of their own class
        if r["teacher_id"].startswith("t-") and "sub" not in r["teacher_id"]:
            assert r["teacher_id"].removeprefix("t-") in {d.student_path[s].rsplit("/", 1)[1] for s in r["student_ids"]}
    shared = [r for r in rows if "shared" in r["family_id"]]
    assert len(shared) == 2 and all(len(r["student_ids"]) == 2 for r in shared)

    made = await env.events(ASSIGNMENT, expect=len(rows))
    assert len(made) == len(rows)
    assert {m["value"]["data"]["assignment_id"] for m in made} == {r["assignment_id"] for r in rows}
    assert all(m["key"] == m["value"]["data"]["assignment_id"] for m in made)
    assert all(m["value"]["type"] == "visits.assignment.made.v1" for m in made)
    [launch_event] = await env.events(CAMPAIGN, expect=1)
    data = launch_event["value"]["data"]
    assert (data["campaign_id"], data["org_path"], data["checklist_version"]) == (cid, DISTRICT, "2026.1")
    assert len(data["checklist_item_ids"]) == 10

    # The teacher's list, and progress per school.
    teacher = next(iter(loads))
    r = await env.http.get(
        f"/api/v1/campaigns/{cid}/assignments", headers=bearer("teacher", d.teachers[teacher], teacher)
    )
    assert r.status_code == 200
    assert sorted(i["family_id"] for i in r.json()["items"]) == sorted(
        x["family_id"] for x in rows if x["teacher_id"] == teacher
    )
    assert {i["status"] for i in r.json()["items"]} == {"assigned"}
    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress", headers=bearer("district_admin", DISTRICT))
    assert r.status_code == 200
    doc = r.json()
    assert doc["totals"] == {"assigned": 74, "completed": 0, "missed": 0, "outstanding": 74, "scheduled": 0}
    assert [u["org_path"] for u in doc["units"]] == [f"{DISTRICT}/620402s1", f"{DISTRICT}/620402s2"]

    # Launching twice is a conflict.
    again = await env.http.post(f"/api/v1/campaigns/{cid}/launch", headers=bearer("district_admin", DISTRICT))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_a_launch_planned_school_group_by_school_group_gives_the_whole_scopes_plan(
    env: Env, monkeypatch: pytest.MonkeyPatch
):
    # The launch plans linked schools together, a few students at a time (LAUNCH_CHUNK 5: about one group per school):
    # here a family with children in both schools, a class teacher of school 2 heading a class of school 1, and a
    # third school without teachers. What it writes is the pure planner's plan of the whole district at once.
    monkeypatch.setattr(campaigns, "LAUNCH_CHUNK", 5)
    schema = env.settings.db_schema
    s1, s2, s3 = (f"{DISTRICT}/620402s{n}" for n in (1, 2, 3))
    c1, c2 = "620402s1g1c1", "620402s2g1c2"
    now = datetime.now(UTC)
    students = [
        ("st-x-a", c1, f"{s1}/620402s1g1/{c1}", "f-x", now),
        ("st-x-b", c2, f"{s2}/620402s2g1/{c2}", "f-x", now),
        *((f"st-s3-{n}", "620402s3g1c1", f"{s3}/620402s3g1/620402s3g1c1", f"f-s3-{n}", now) for n in range(4)),
    ]
    await env.db.copy_records_to_table(
        "students", schema_name=schema, records=students,
        columns=["student_id", "class_id", "org_path", "family_id", "occurred_at"],
    )  # fmt: skip
    await env.db.execute(
        f'INSERT INTO "{schema}".staff (staff_id, org_path, roles, class_ids, head_class_id, occurred_at) '
        "VALUES ('t-cross', $1, ARRAY['class_teacher'], ARRAY[$2], $2, $3)",
        s2,
        c1,
        now,
    )
    everyone = await env.db.fetch(
        f'SELECT student_id, class_id, org_path, family_id FROM "{schema}".students '
        "WHERE active AND family_id <> '' AND org_path LIKE $1 ORDER BY family_id, student_id",
        DISTRICT + "/%",
    )
    teachers = await env.db.fetch(
        f'SELECT staff_id, org_path, head_class_id, class_ids FROM "{schema}".staff '
        "WHERE active AND roles && $1::text[] AND org_path LIKE $2",
        TEACHING_ROLES,
        DISTRICT + "/%",
    )
    whole = campaigns.build_plan(everyone, teachers, 10)
    assert "t-cross" in whole.loads() and whole.unassigned == [f"f-s3-{n}" for n in range(4)]

    launched = await env.launch()
    rows = await env.assignments(launched["campaign_id"])
    assert sorted((r["family_id"], r["teacher_id"], tuple(r["student_ids"])) for r in rows) == sorted(
        (a.family_id, a.teacher_id, a.student_ids) for a in whole.assignments
    )
    assert launched["unassigned_family_ids"] == whole.unassigned
    assert (launched["assignments"], launched["teachers"]) == (len(whole.assignments), len(whole.loads()))
    assert launched["max_per_teacher"] == max(whole.loads().values())


async def test_assignments_can_be_reassigned_removed_and_added_by_hand_with_events(env: Env):
    cid = (await env.launch(org_path=f"{DISTRICT}/620402s1"))["campaign_id"]
    rows = await env.assignments(cid)
    assert len(rows) == 37
    school_admin = bearer("school_admin", f"{DISTRICT}/620402s1")
    first, second = rows[0], rows[1]
    other = next(t for t in env.directory.teachers if t != first["teacher_id"] and "620402s1" in t)

    etag = f'"{first["version"]}"'
    r = await env.http.patch(
        f"/api/v1/assignments/{first['assignment_id']}",
        json={"teacher_id": other},
        headers={**school_admin, "If-Match": etag},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "assignment_id": first["assignment_id"],
        "teacher_id": other,
        "previous_teacher_id": first["teacher_id"],
        "version": first["version"] + 1,
    }
    assert r.headers["etag"] == f'"{first["version"] + 1}"'
    r = await env.http.patch(  # a second admin still holding the first version
        f"/api/v1/assignments/{first['assignment_id']}",
        json={"teacher_id": other},
        headers={**school_admin, "If-Match": etag},
    )
    assert r.status_code == 412 and r.json()["version"] == first["version"] + 1
    r = await env.http.patch(
        f"/api/v1/assignments/{first['assignment_id']}",
        json={"teacher_id": "t-620403s1g1c1"},
        headers={**school_admin, "If-Match": "*"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/teacher_id"  # outside the campaign

    r = await env.http.delete(f"/api/v1/assignments/{second['assignment_id']}", headers=school_admin)
    assert r.status_code == 200 and r.json()["status"] == "removed"
    body = {"family_id": second["family_id"], "teacher_id": other}
    r = await env.http.post(f"/api/v1/campaigns/{cid}/assignments", json=body, headers=school_admin)
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["student_ids"] == list(second["student_ids"])
    dup = await env.http.post(f"/api/v1/campaigns/{cid}/assignments", json=body, headers=school_admin)
    assert dup.status_code == 409

    events = await env.events(ASSIGNMENT, expect=37 + 3)
    tail = [
        (m["value"]["type"], m["value"]["data"].get("change"))
        for m in events
        if m["value"]["data"]["assignment_id"]
        in {first["assignment_id"], second["assignment_id"], added["assignment_id"]}
    ]
    assert Counter(tail) == Counter(
        {
            ("visits.assignment.made.v1", None): 3,
            ("visits.assignment.changed.v1", "reassigned"): 1,
            ("visits.assignment.changed.v1", "removed"): 1,
        }
    )
    changed = [m["value"]["data"] for m in events if m["value"]["data"].get("change") == "reassigned"]
    assert changed[0]["teacher_id"] == other and changed[0]["previous_teacher_id"] == first["teacher_id"]

    r = await env.http.post(f"/api/v1/campaigns/{cid}/close", headers=school_admin)
    assert r.status_code == 200 and r.json()["status"] == "closed"
    [_, closed] = await env.events(CAMPAIGN, expect=2)
    assert closed["value"]["type"] == "visits.campaign.closed.v1"


async def test_a_teacher_downloads_only_what_changed_since_the_last_sync(env: Env):
    """`changed_since`: the assignments changed after a time, removed ones included, still only the teacher's
    own: what an offline app downloads after its first sync (a reassigned family shows up at its new teacher)."""
    cid = (await env.launch(org_path=f"{DISTRICT}/620402s1"))["campaign_id"]
    rows = await env.assignments(cid)
    teacher = Counter(r["teacher_id"] for r in rows).most_common(1)[0][0]
    mine = [r for r in rows if r["teacher_id"] == teacher]
    assert len(mine) >= 3
    other = next(r["teacher_id"] for r in rows if r["teacher_id"] != teacher)
    as_teacher = bearer("teacher", env.directory.teachers[teacher], teacher)
    as_other = bearer("teacher", env.directory.teachers[other], other)
    url = f"/api/v1/campaigns/{cid}/assignments"
    first = (await env.http.get(url, headers=as_teacher)).json()["items"]
    since = max(a["updated_at"] for a in first)
    quiet = await env.http.get(url, params={"changed_since": since}, headers=as_teacher)
    assert quiet.status_code == 200 and quiet.json()["items"] == [], "nothing changed since the launch..."

    admin = bearer("school_admin", f"{DISTRICT}/620402s1")
    moved, removed, planned = mine[0], mine[1], mine[2]
    r = await env.http.patch(
        f"/api/v1/assignments/{moved['assignment_id']}",
        json={"teacher_id": other},
        headers={**admin, "If-Match": f'"{moved["version"]}"'},
    )
    assert r.status_code == 200, r.text
    assert (await env.http.delete(f"/api/v1/assignments/{removed['assignment_id']}", headers=admin)).status_code == 200
    body = {"planned_on": TODAY.isoformat(), "mode": "in_home"}
    r = await env.http.post(f"/api/v1/assignments/{planned['assignment_id']}/schedule", json=body, headers=as_teacher)
    assert r.status_code == 200, r.text

    changed = (await env.http.get(url, params={"changed_since": since}, headers=as_teacher)).json()["items"]
    assert {a["assignment_id"]: a["status"] for a in changed} == {
        removed["assignment_id"]: "removed",
        planned["assignment_id"]: "assigned",
    }
    theirs = (await env.http.get(url, params={"changed_since": since}, headers=as_other)).json()["items"]
    assert [(a["assignment_id"], a["teacher_id"]) for a in theirs] == [(moved["assignment_id"], other)]
    everything = (await env.http.get(url, headers=as_teacher)).json()["items"]
    assert removed["assignment_id"] not in {a["assignment_id"] for a in everything}, "the full list leaves it out"
    bad = await env.http.get(url, params={"changed_since": "yesterday"}, headers=as_teacher)
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/query/changed_since"


async def test_campaign_reads_checklist_config_and_openapi(env: Env):
    admin = bearer("district_admin", DISTRICT)
    r = await env.http.get("/api/v1/checklists/current", headers=admin)
    assert r.status_code == 200 and r.json()["version"] == "2026.1" and len(r.json()["items"]) == 10
    assert (await env.http.get("/api/v1/checklists/1999.1", headers=admin)).status_code == 404
    bad = {"name": "x", "org_path": DISTRICT, "starts_on": "2026-10-01", "ends_on": "2026-09-01"}
    r = await env.http.post("/api/v1/campaigns", json=bad, headers=admin)
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    r = await env.http.post(
        "/api/v1/campaigns", json={**bad, "ends_on": "2026-10-02", "checklist_version": "0"}, headers=admin
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/checklist_version"

    cid = (await env.launch(target_per_teacher=5, required_modes=["in_home", "online"]))["campaign_id"]
    r = await env.http.get(f"/api/v1/campaigns/{cid}", headers=bearer("teacher", f"{DISTRICT}/620402s1", "t-x"))
    doc = r.json()
    assert r.status_code == 200 and doc["target_per_teacher"] == 5 and doc["required_modes"] == ["in_home", "online"]
    assert [i["id"] for i in doc["checklist"]][:2] == ["appointment_made", "visited_in_pairs"]
    listed = await env.http.get("/api/v1/campaigns", headers=bearer("school_admin", f"{DISTRICT}/620402s2"))
    assert [c["campaign_id"] for c in listed.json()["items"]] == [cid]
    other = await env.http.get("/api/v1/campaigns", headers=bearer("district_admin", "/620400/620403"))
    assert other.json()["items"] == []
    assert (
        await env.http.get(f"/api/v1/campaigns/{cid}", headers=bearer("district_admin", "/620400/620403"))
    ).status_code == 403
    assert (await env.http.get("/openapi.json")).status_code == 200


async def test_a_campaign_has_a_version_and_a_stale_if_match_neither_launches_nor_closes_it(env: Env):
    admin = bearer("district_admin", DISTRICT)
    body = {"name": "春季家访", "org_path": DISTRICT, "starts_on": "2026-03-01", "ends_on": "2026-03-31"}
    created = await env.http.post("/api/v1/campaigns", json=body, headers=admin)
    assert created.status_code == 201 and created.json()["version"] == 1, created.text
    one = f"/api/v1/campaigns/{created.json()['campaign_id']}"
    read = await env.http.get(one, headers=admin)
    assert read.headers["etag"] == '"1"'
    stale = await env.http.post(f"{one}/launch", headers={**admin, "If-Match": '"9"'})
    assert stale.status_code == 412 and stale.json()["version"] == 1 and stale.headers["etag"] == '"1"'
    assert (await env.http.get(one, headers=admin)).json()["status"] == "draft"
    launched = await env.http.post(f"{one}/launch", headers={**admin, "If-Match": read.headers["etag"]})
    assert launched.status_code == 200 and launched.json()["version"] == 2, launched.text
    assert launched.headers["etag"] == '"2"'
    assert (await env.http.post(f"{one}/close", headers={**admin, "If-Match": '"1"'})).status_code == 412
    closed = await env.http.post(f"{one}/close", headers={**admin, "If-Match": '"2"'})
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["version"] == 3
