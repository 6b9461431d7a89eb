"""A teacher's `staff.left` hands their open assignments to colleagues by the launch's rules, with an
`assignment.changed` (reassigned) each; visited families stay theirs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.contracts.committees import StaffLeft
from shared.contracts.visits import ASSIGNMENT
from shared.testing.fixtures import wait_for
from tests.integration.visits.conftest import DISTRICT, Env, bearer, completed
from tests.integration.visits.directory import publish

pytestmark = pytest.mark.integration

S1 = f"{DISTRICT}/620402s1"
LEAVER = "t-620402s1g1c1"


async def test_a_leavers_open_assignments_go_to_colleagues_and_visited_ones_stay(env: Env):
    cid = (await env.launch())["campaign_id"]
    mine = [r for r in await env.assignments(cid) if r["teacher_id"] == LEAVER]
    assert len(mine) >= 3
    visited = mine[0]["assignment_id"]
    r = await env.http.post("/api/v1/visits", json=completed(visited), headers=bearer("teacher", S1, LEAVER))
    assert r.status_code == 201, r.text
    open_ids = {r["assignment_id"] for r in mine[1:]}

    await publish(env.settings, [StaffLeft(staff_id=LEAVER, org_path=S1, occurred_at=datetime.now(UTC))])

    async def handed_over() -> bool:
        return await env.count("assignments", f"teacher_id = '{LEAVER}'") == 1

    await wait_for(handed_over, timeout=30)

    after = {r["assignment_id"]: r for r in await env.assignments(cid)}
    assert after[visited]["teacher_id"] == LEAVER and after[visited]["status"] == "completed"
    new_teachers = {after[a]["teacher_id"] for a in open_ids}
    assert LEAVER not in new_teachers
    assert all(after[a]["school_path"] == S1 for a in open_ids)  # colleagues of the same school
    staff = {
        r["staff_id"] for r in await env.db.fetch(f'SELECT staff_id FROM "{env.settings.db_schema}".staff WHERE active')
    }
    assert new_teachers <= staff

    events = await env.events(ASSIGNMENT)
    changed = [e["value"]["data"] for e in events if e["value"]["type"] == "visits.assignment.changed.v1"]
    assert {c["assignment_id"] for c in changed} == open_ids
    assert {(c["change"], c["previous_teacher_id"]) for c in changed} == {("reassigned", LEAVER)}
    assert {c["assignment_id"]: c["teacher_id"] for c in changed} == {a: after[a]["teacher_id"] for a in open_ids}
