"""Recording visits through HTTP against the real stack: events, rejections, batches, idempotency."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from services.visits.schemas import VisitIn
from services.visits.usecases import recording
from shared import db, idempotency
from shared.auth import Principal, Role
from shared.clock import SystemClock
from shared.contracts.visits import FINDING, VISIT
from tests.integration.visits.conftest import DISTRICT, TODAY, Env, bearer, checklist, completed

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def teacher_of(env: Env, a: Any) -> dict[str, str]:
    return bearer("teacher", env.directory.teachers[a["teacher_id"]], a["teacher_id"])


async def test_recorded_visits_publish_visit_and_finding_events_in_per_student_order(env: Env):
    cid = (await env.launch())["campaign_id"]
    rows = await env.assignments(cid)
    shared = next(r for r in rows if "shared" in r["family_id"])
    single = next(r for r in rows if "shared" not in r["family_id"])
    k0, k1 = shared["student_ids"]
    [kb] = single["student_ids"]

    missed = {
        "assignment_id": shared["assignment_id"],
        "status": "missed",
        "visited_on": TODAY.isoformat(),
        "miss_reason": "family_unavailable",
    }
    r = await env.http.post("/api/v1/visits", json=missed, headers=teacher_of(env, shared))
    assert r.status_code == 201, r.text
    missed_id = r.json()["visit_id"]
    findings = [
        {"student_id": k0, "category": "left_behind", "severity": "high", "note": "parents in Lanzhou (private)"},
        {"student_id": k0, "category": "mental_health", "severity": "medium"},
        {"student_id": k1, "category": "safety_risk", "severity": "urgent"},
    ]
    r = await env.http.post(
        "/api/v1/visits", json=completed(shared["assignment_id"], findings), headers=teacher_of(env, shared)
    )
    assert r.status_code == 201, r.text
    visit = r.json()
    assert visit["status"] == "completed" and len(visit["finding_ids"]) == 3
    r = await env.http.post(
        "/api/v1/visits",
        json=completed(single["assignment_id"], [{"student_id": kb, "category": "family_hardship", "severity": "low"}]),
        headers=teacher_of(env, single),
    )
    assert r.status_code == 201, r.text
    again = await env.http.post(
        "/api/v1/visits", json=completed(shared["assignment_id"]), headers=teacher_of(env, shared)
    )
    assert again.status_code == 409 and again.headers["content-type"] == PROBLEM

    found = await env.events(FINDING, expect=4)
    assert len(found) == 4
    by_student: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in found:
        assert m["key"] == m["value"]["data"]["student_id"]
        assert m["value"]["type"] == "visits.finding.recorded.v1"
        by_student[m["key"]].append(m["value"]["data"])
    assert [f["category"] for f in by_student[k0]] == ["left_behind", "mental_health"]
    assert [f["severity"] for f in by_student[k0]] == ["high", "medium"]
    assert [f["category"] for f in by_student[k1]] == ["safety_risk"]
    f0 = by_student[k0][0]
    assert f0["visit_id"] == visit["visit_id"] and f0["campaign_id"] == cid
    assert f0["teacher_id"] == shared["teacher_id"] and f0["visited_on"] == TODAY.isoformat()
    assert f0["org_path"] == env.directory.student_path[k0]
    assert by_student[k1][0]["org_path"] == env.directory.student_path[k1] != f0["org_path"]
    assert f0["recorded_at"] and f0["finding_id"] == visit["finding_ids"][0]
    assert by_student[kb][0]["category"] == "family_hardship"

    visits = await env.events(VISIT, expect=3)
    # Visit events are keyed by visit id (the contract), so only their set is fixed, not their order across keys.
    assert {(m["value"]["type"], m["key"]) for m in visits if m["key"] in (missed_id, visit["visit_id"])} == {
        ("visits.visit.missed.v1", missed_id),
        ("visits.visit.completed.v1", visit["visit_id"]),
    }
    done = next(m["value"]["data"] for m in visits if m["key"] == visit["visit_id"])
    assert done["finding_count"] == 3 and done["mode"] == "in_home" and done["student_ids"] == sorted([k0, k1])
    assert [c["item_id"] for c in done["checklist"]] == [c["item_id"] for c in checklist()]
    for m in [*found, *visits]:  # notes stay in the visits service
        assert "private" not in str(m["value"]) and "note" not in m["value"]["data"]

    r = await env.http.get(f"/api/v1/visits/{visit['visit_id']}", headers=teacher_of(env, shared))
    assert r.status_code == 200
    detail = r.json()
    assert detail["checklist"][0]["zh"] and detail["checklist"][0]["en"]
    assert {(f["student_id"], f["category"]) for f in detail["findings"]} == {
        (k0, "left_behind"), (k0, "mental_health"), (k1, "safety_risk")
    }  # fmt: skip
    assert "parents in Lanzhou (private)" in {f["note"] for f in detail["findings"]}

    r = await env.http.get(f"/api/v1/campaigns/{cid}/progress?by=district", headers=bearer("district_admin", DISTRICT))
    [unit] = r.json()["units"]
    assert (unit["assigned"], unit["completed"], unit["missed"], unit["outstanding"]) == (74, 2, 0, 72)
    assert unit["by_mode"] == {"in_home": 2, "online": 0, "phone": 0, "at_school": 0}


async def test_a_rejected_visit_stores_and_publishes_nothing(env: Env):
    cid = (await env.launch())["campaign_id"]
    rows = await env.assignments(cid)
    a, b = rows[0], rows[1]
    me = teacher_of(env, a)
    other_child = b["student_ids"][0]
    cases = [
        (completed(a["assignment_id"], [{"student_id": other_child, "category": "left_behind", "severity": "low"}]),
         me, 422, ["/findings/0/student_id"]),
        (completed(a["assignment_id"], checklist=checklist()[:9]), me, 422, ["/checklist"]),
        (completed(a["assignment_id"], visited_on=(TODAY + timedelta(days=31)).isoformat()), me, 422, ["/visited_on"]),
        (completed(a["assignment_id"], [{"student_id": a["student_ids"][0], "category": "aliens", "severity": "low"}]),
         me, 422, ["/findings/0/category"]),
        (completed(a["assignment_id"], mode=None), me, 422, ["/mode"]),
        (completed(a["assignment_id"], colour="red"), me, 422, ["/colour"]),
        (completed("no-such-assignment"), me, 404, ["/assignment_id"]),
        (completed(b["assignment_id"]), me if a["teacher_id"] != b["teacher_id"] else bearer("teacher", DISTRICT, "x"),
         403, ["/assignment_id"]),
        (completed(a["assignment_id"]), bearer("school_admin", f"{DISTRICT}/elsewhere"), 403, ["/assignment_id"]),
    ]  # fmt: skip
    for body, headers, status, pointers in cases:
        r = await env.http.post("/api/v1/visits", json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert [e["pointer"] for e in r.json()["errors"]] == pointers
    r = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"]))
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM

    assert await env.count("visits") == 0 and await env.count("findings") == 0
    assert await env.count("outbox", "topic IN ('visits.visit.events', 'visits.finding.events')") == 0
    assert await env.events(VISIT) == [] and await env.events(FINDING) == []
    assert {r["status"] for r in await env.assignments(cid)} == {"assigned"}


async def test_a_batch_stores_the_good_items_reports_the_bad_ones_and_replays_with_the_same_key(env: Env):
    cid = (await env.launch())["campaign_id"]
    rows = await env.assignments(cid)
    s1 = [r for r in rows if r["org_path"].startswith(f"{DISTRICT}/620402s1/")]
    s2 = next(r for r in rows if r["org_path"].startswith(f"{DISTRICT}/620402s2/"))
    kid = s1[0]["student_ids"][0]
    items: list[Any] = [
        completed(s1[0]["assignment_id"], [{"student_id": kid, "category": "health_need", "severity": "medium"}]),
        {"assignment_id": s1[1]["assignment_id"], "status": "missed", "visited_on": TODAY.isoformat(),
         "miss_reason": "family_declined"},
        completed(s1[2]["assignment_id"], mode="by_pigeon"),
        completed(s1[3]["assignment_id"], mode="phone", duration_minutes=15),
        completed(s1[4]["assignment_id"], [{"student_id": kid, "category": "left_behind", "severity": "low"}]),
        completed("no-such-assignment"),
        completed(s2["assignment_id"]),  # another school: not this admin's
        completed(s1[0]["assignment_id"]),  # the same assignment again in the same batch
        "not even an object",
    ]  # fmt: skip
    admin = {**bearer("school_admin", f"{DISTRICT}/620402s1"), "Idempotency-Key": "batch-1"}
    r = await env.http.post("/api/v1/visits/batch", json={"visits": items}, headers=admin)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["stored"], doc["rejected"], doc["conflicts"]) == (3, 6, 0)
    results = doc["results"]
    assert [x["index"] for x in results] == list(range(9))
    assert [x["result"] for x in results] == ["stored", "stored", "rejected", "stored"] + ["rejected"] * 5
    assert {x["index"]: [e["pointer"] for e in x["errors"]] for x in results if x["result"] == "rejected"} == {
        2: ["/visits/2/mode"],
        4: ["/visits/4/findings/0/student_id"],
        5: ["/visits/5/assignment_id"],
        6: ["/visits/6/assignment_id"],
        7: ["/visits/7/assignment_id"],
        8: ["/visits/8"],
    }
    assert len(results[0]["finding_ids"]) == 1

    replay = await env.http.post("/api/v1/visits/batch", json={"visits": items}, headers=admin)
    assert replay.status_code == 200 and replay.json() == doc
    assert replay.headers["idempotent-replayed"] == "true"
    assert await env.count("visits") == 3 and await env.count("findings") == 1
    visits = await env.events(VISIT, expect=3)
    assert sorted(m["value"]["type"] for m in visits) == ["visits.visit.completed.v1"] * 2 + ["visits.visit.missed.v1"]
    assert [m["key"] for m in await env.events(FINDING, expect=1)] == [kid]
    statuses = {r["assignment_id"]: r["status"] for r in await env.assignments(cid)}
    assert [statuses[s1[i]["assignment_id"]] for i in range(5)] == [
        "completed",
        "missed",
        "assigned",
        "completed",
        "assigned",
    ]


async def test_a_stale_offline_item_comes_back_as_a_conflict_with_the_assignments_current_state(env: Env):
    """A teacher records two visits offline; meanwhile an admin gives one family to another teacher. On upload the
    untouched assignment's visit is stored, the reassigned one's is a `conflict` with the current state."""
    cid = (await env.launch())["campaign_id"]
    rows = await env.assignments(cid)
    mine = [r for r in rows if r["teacher_id"] == rows[0]["teacher_id"]][:2]
    assert len(mine) == 2 and all(r["version"] == 1 for r in mine)
    kept, moved = mine
    teacher = teacher_of(env, kept)
    other = next(t for t in env.directory.teachers if t != kept["teacher_id"] and "620402s1" in t)
    admin = bearer("school_admin", f"{DISTRICT}/620402s1")
    r = await env.http.patch(
        f"/api/v1/assignments/{moved['assignment_id']}",
        json={"teacher_id": other},
        headers={**admin, "If-Match": f'"{moved["version"]}"'},
    )
    assert r.status_code == 200, r.text
    offline = [
        {**completed(kept["assignment_id"]), "assignment_version": kept["version"]},
        {**completed(moved["assignment_id"]), "assignment_version": moved["version"]},
    ]
    r = await env.http.post("/api/v1/visits/batch", json={"visits": offline}, headers=teacher)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["stored"], doc["rejected"], doc["conflicts"]) == (1, 0, 1)
    stored, conflict = doc["results"]
    assert stored["result"] == "stored" and stored["assignment_version"] == kept["version"] + 1
    assert conflict == {
        "index": 1,
        "result": "conflict",
        "assignment_id": moved["assignment_id"],
        "current": {"assignment_id": moved["assignment_id"], "version": 2, "status": "assigned", "may_record": False},
    }
    assert await env.count("visits") == 1  # the conflicting visit was not stored
    # A single visit on a stale version: 409 naming the field, nothing stored.
    single = {**completed(moved["assignment_id"]), "assignment_version": 1}
    r = await env.http.post("/api/v1/visits", json=single, headers=bearer("school_admin", f"{DISTRICT}/620402s1"))
    assert r.status_code == 409 and r.json()["errors"][0]["pointer"] == "/assignment_version"
    # Recorded again against the current version (the new teacher's), it is stored.
    mover = bearer("teacher", env.directory.teachers[other], other)
    r = await env.http.post("/api/v1/visits", json={**single, "assignment_version": 2}, headers=mover)
    assert r.status_code == 201 and r.json()["assignment_version"] == 3, r.text


async def test_concurrent_single_visits_are_committed_together_but_keep_their_own_correlation_ids(env: Env):
    cid = (await env.launch())["campaign_id"]
    rows = (await env.assignments(cid))[:20]

    async def post(i: int, a: Any) -> Any:
        finding = [{"student_id": a["student_ids"][0], "category": "learning_difficulty", "severity": "low"}]
        headers = {**teacher_of(env, a), "X-Correlation-Id": f"corr-{i}"}
        return await env.http.post("/api/v1/visits", json=completed(a["assignment_id"], finding), headers=headers)

    answers = await asyncio.gather(*(post(i, a) for i, a in enumerate(rows)))
    assert [r.status_code for r in answers] == [201] * 20
    by_visit = {r.json()["visit_id"]: f"corr-{i}" for i, r in enumerate(answers)}
    visits = await env.events(VISIT, expect=20)
    assert {m["key"]: m["value"]["correlationid"] for m in visits} == by_visit
    findings = await env.events(FINDING, expect=20)
    assert {m["value"]["data"]["visit_id"]: m["value"]["correlationid"] for m in findings} == by_visit
    assert await env.count("visits") == 20 and await env.count("findings") == 20


async def test_a_single_visit_with_an_idempotency_key_is_stored_once(env: Env):
    cid = (await env.launch())["campaign_id"]
    a = (await env.assignments(cid))[0]
    headers = {**teacher_of(env, a), "Idempotency-Key": "visit-1"}
    first = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"]), headers=headers)
    again = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"]), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert await env.count("visits") == 1
    assert len(await env.events(VISIT, expect=1)) == 1


async def test_concurrent_repeats_of_one_idempotency_key_store_the_visit_once_with_one_answer(env: Env):
    """A teacher's app resending one visit many times at once (same key): the group commit stores it once; every
    request gets the first answer, all but one as a replay (in the same group or a later one)."""
    cid = (await env.launch())["campaign_id"]
    a = (await env.assignments(cid))[0]
    headers = {**teacher_of(env, a), "Idempotency-Key": "visit-many"}
    finding = [{"student_id": a["student_ids"][0], "category": "left_behind", "severity": "high"}]
    answers = await asyncio.gather(
        *(
            env.http.post("/api/v1/visits", json=completed(a["assignment_id"], finding), headers=headers)
            for _ in range(12)
        )
    )
    assert [r.status_code for r in answers] == [201] * 12, [r.text for r in answers if r.status_code != 201]
    assert all(r.json() == answers[0].json() for r in answers)
    assert sum(1 for r in answers if r.headers.get("idempotent-replayed") != "true") == 1
    assert await env.count("visits") == 1 and await env.count("findings") == 1
    assert len(await env.events(VISIT, expect=1)) == 1 and len(await env.events(FINDING, expect=1)) == 1


async def test_a_repeat_inside_one_group_commit_gets_the_first_answer_and_writes_nothing(env: Env):
    """Two requests with one key in the same group (a resend that arrived while the first waited for the writer):
    the first is stored, the second is a repeat of it, not a second visit of the assignment (a 409)."""
    cid = (await env.launch())["campaign_id"]
    a = (await env.assignments(cid))[0]
    teacher = Principal("teacher-1", frozenset({Role.TEACHER}), DISTRICT, staff_id=a["teacher_id"])
    visit = VisitIn.model_validate(completed(a["assignment_id"]))
    claim = idempotency.Claim(teacher.subject, "resent", "POST", "/api/v1/visits", "same-body")
    group = [recording.Submission(teacher, [visit], "single", None, claim) for _ in range(2)]
    conn = await db.connect(env.settings.database_url, env.settings.db_schema)
    try:
        async with conn.transaction():
            first, second = await recording.record_group(conn, group, SystemClock())
    finally:
        await conn.close()
    assert isinstance(first, recording.Recorded) and first.status == 201 and first.body is not None
    assert isinstance(second, recording.Earlier) and second.answer is not None
    assert second.answer.body == first.body and second.answer.status == 201
    assert await env.count("visits") == 1 and len(await env.events(VISIT, expect=1)) == 1


async def test_a_refused_visit_keeps_nothing_under_its_key_and_a_reused_key_is_refused(env: Env):
    """A refusal is not an answer kept for the key: the corrected visit, sent again with the same key, is stored.
    The key then answers only that request: another body under it is refused, naming the header."""
    cid = (await env.launch())["campaign_id"]
    a, b = (await env.assignments(cid))[:2]
    headers = {**teacher_of(env, a), "Idempotency-Key": "visit-fixed"}
    r = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"], mode="by_pigeon"), headers=headers)
    assert r.status_code == 422
    bad = completed(a["assignment_id"], [{"student_id": "not-a-child", "category": "left_behind", "severity": "low"}])
    r = await env.http.post("/api/v1/visits", json=bad, headers=headers)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/findings/0/student_id", r.text
    r = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"]), headers=headers)
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers, r.text
    other = await env.http.post("/api/v1/visits", json=completed(b["assignment_id"]), headers=headers)
    assert other.status_code == 422 and other.headers["content-type"] == PROBLEM
    assert other.json()["errors"][0]["pointer"] == "/header/Idempotency-Key"
    assert await env.count("visits") == 1


async def test_a_scheduled_visit_is_moved_then_completed_under_its_id_and_removal_cancels_a_plan(env: Env):
    cid = (await env.launch(required_modes=["in_home", "online"]))["campaign_id"]
    a, b = (await env.assignments(cid))[:2]
    me = teacher_of(env, a)
    url = f"/api/v1/assignments/{a['assignment_id']}/schedule"
    r = await env.http.post(url, json={"planned_on": TODAY.isoformat(), "mode": "phone"}, headers=me)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/mode"
    r = await env.http.post(url, json={"planned_on": TODAY.isoformat(), "mode": "in_home"}, headers=me)
    assert r.status_code == 200, r.text
    planned = r.json()
    later = (TODAY + timedelta(days=2)).isoformat()
    r = await env.http.post(url, json={"planned_on": later, "mode": "online"}, headers=me)
    assert r.json()["visit_id"] == planned["visit_id"] and r.json()["planned_on"] == later
    listed = await env.http.get(f"/api/v1/campaigns/{cid}/assignments", headers=me)
    mine = next(i for i in listed.json()["items"] if i["assignment_id"] == a["assignment_id"])
    assert (mine["status"], mine["planned_on"], mine["planned_mode"]) == ("assigned", later, "online")
    progress = await env.http.get(f"/api/v1/campaigns/{cid}/progress", headers=bearer("district_admin", DISTRICT))
    assert progress.json()["totals"]["scheduled"] == 1

    r = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"]), headers=me)
    assert r.status_code == 201 and r.json()["visit_id"] == planned["visit_id"]
    assert await env.count("visits") == 1
    detail = (await env.http.get(f"/api/v1/visits/{planned['visit_id']}", headers=me)).json()
    assert (detail["status"], detail["mode"], detail["visited_on"]) == ("completed", "in_home", TODAY.isoformat())

    admin = bearer("district_admin", DISTRICT)
    other = f"/api/v1/assignments/{b['assignment_id']}"
    r = await env.http.post(f"{other}/schedule", json={"planned_on": later, "mode": "online"}, headers=admin)
    assert r.status_code == 200
    assert (await env.http.delete(other, headers=admin)).status_code == 200
    cancelled = await env.db.fetchval(
        f'SELECT status FROM "{env.settings.db_schema}".visits WHERE visit_id = $1', r.json()["visit_id"]
    )
    assert cancelled == "cancelled"
    [event] = await env.events(VISIT, expect=1)  # scheduling publishes nothing; the completion does
    assert event["key"] == planned["visit_id"] and event["value"]["type"] == "visits.visit.completed.v1"


async def test_text_postgres_cannot_store_is_refused_per_item_not_per_batch(env: Env):
    cid = (await env.launch())["campaign_id"]
    a, b = (await env.assignments(cid))[:2]
    admin = bearer("district_admin", DISTRICT)
    items = [completed(a["assignment_id"], note="bad\x00note"), completed(b["assignment_id"])]
    r = await env.http.post("/api/v1/visits/batch", json={"visits": items}, headers=admin)
    assert r.status_code == 200
    assert [x["result"] for x in r.json()["results"]] == ["rejected", "stored"]
    assert r.json()["results"][0]["errors"][0]["pointer"] == "/visits/0/note"
    single = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"], note="\x00"), headers=admin)
    assert single.status_code == 422 and single.json()["errors"][0]["pointer"] == "/note"


async def test_a_field_name_postgres_cannot_store_is_named_by_a_pointer_that_can_be_kept(env: Env):
    """Found by the fuzzer: an item with a NUL in a field *name* was reported with the NUL in its pointer, and the
    batch's answer, kept under its Idempotency-Key, could not be stored (422 for the whole batch)."""
    cid = (await env.launch())["campaign_id"]
    [a] = (await env.assignments(cid))[:1]
    admin = bearer("district_admin", DISTRICT) | {"Idempotency-Key": "nul-in-a-field-name"}
    items = [{**completed(a["assignment_id"]), "x\x00y": 1}, [{"\x16\x00": False}, 1.5]]
    r = await env.http.post("/api/v1/visits/batch", json={"visits": items}, headers=admin)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["result"] for x in results] == ["rejected", "rejected"]
    assert results[0]["errors"][0]["pointer"] == "/visits/0/x\\u0000y"
    again = await env.http.post("/api/v1/visits/batch", json={"visits": items}, headers=admin)
    assert again.status_code == 200 and again.json() == r.json()  # the kept answer
