"""Paging a campaign's assignments: every one once, in order, and each page read from its cursor in an index."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from services.visits import store
from services.visits.usecases import campaigns
from shared.testing.plans import Statements, generic_plan, kinds, nodes
from tests.integration.visits.conftest import DISTRICT, Env, bearer

pytestmark = pytest.mark.integration


async def every_page(env: Env, url: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        doc = (await env.http.get(url, params=query, headers=headers)).json()
        items += doc["items"]
        if (cursor := doc["next_cursor"]) is None:
            return items


async def test_pages_hold_every_assignment_once_in_teacher_and_family_order(env: Env):
    cid = (await env.launch())["campaign_id"]
    rows = await env.assignments(cid)
    url = f"/api/v1/campaigns/{cid}/assignments"
    admin = await every_page(env, url, bearer("district_admin", DISTRICT), limit=7)
    assert [(a["teacher_id"], a["family_id"]) for a in admin] == sorted((r["teacher_id"], r["family_id"]) for r in rows)
    teacher = Counter(r["teacher_id"] for r in rows).most_common(1)[0][0]
    as_teacher = bearer("teacher", env.directory.teachers[teacher], teacher)
    mine = await every_page(env, url, as_teacher, limit=3)
    assert [a["family_id"] for a in mine] == sorted(r["family_id"] for r in rows if r["teacher_id"] == teacher)
    assigned = await every_page(env, url, bearer("district_admin", DISTRICT), limit=5, status="assigned")
    assert len(assigned) == len(rows)


@pytest.mark.parametrize(
    "who",
    ["the city's admin, page 2", "a teacher, page 1", "a teacher's open ones, page 2"],
)
async def test_a_page_starts_at_its_cursor_in_an_index_however_large_the_campaign(env: Env, who: str):
    """In the generic plan (what a pooled connection runs after five executions) a page neither sorts nor reads the
    rest of the campaign: an index scan whose condition holds the cursor (and the teacher), under the limit. The
    statement with `($n IS NULL OR ...)` for every filter sorted the whole campaign for every page."""
    cid = (await env.launch())["campaign_id"]
    schema = env.settings.db_schema
    await env.db.execute(
        f'INSERT INTO "{schema}".assignments (assignment_id, campaign_id, teacher_id, family_id, student_ids, org_path,'
        " school_path, district_path) SELECT 'a-x' || i, $1, 't-x' || (i / 12), 'f-x' || i, '{}', $2, $2, $2"
        " FROM generate_series(1, 30000) i",
        cid,
        DISTRICT,
    )
    await env.db.execute(f'ANALYZE "{schema}".assignments')
    teacher = "t-x1200"
    filters: dict[str, dict[str, Any]] = {
        "the city's admin, page 2": {"teacher_id": None, "status": None, "after": (teacher, "f-x14400")},
        "a teacher, page 1": {"teacher_id": teacher, "status": None, "after": None},
        "a teacher's open ones, page 2": {"teacher_id": teacher, "status": "assigned", "after": (teacher, "f-x14405")},
    }
    composed = Statements()
    await store.assignments.list_assignments(composed, cid, scope="/620400", limit=201, **filters[who])
    plan = await generic_plan(env.db, schema, composed.sql, composed.args)
    assert plan["Node Type"] == "Limit" and not {"Sort", "Bitmap Heap Scan"} & set(kinds(plan)), kinds(plan)
    [scan] = [n for n in nodes(plan) if n["Node Type"] == "Index Scan"]
    assert scan["Index Name"] == "assignments_page"
    if filters[who]["after"]:
        assert "ROW(teacher_id, family_id) >" in scan["Index Cond"], scan["Index Cond"]
    if filters[who]["teacher_id"]:
        assert "teacher_id =" in scan["Index Cond"], scan["Index Cond"]


async def test_a_large_launch_leaves_statistics_that_know_its_assignments(env: Env, monkeypatch: pytest.MonkeyPatch):
    """Without statistics PostgreSQL plans a page as if the table were nearly empty (a sort of the whole campaign,
    60 ms a page after a city launch) until autovacuum comes by: a launch of many assignments analyzes the table."""
    monkeypatch.setattr(campaigns, "ANALYZE_AFTER", 10)  # the district's 74 stand for a city's 184,000
    launched = await env.launch()
    known = await env.db.fetchval(
        "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", f'"{env.settings.db_schema}".assignments'
    )
    assert known == launched["assignments"]
