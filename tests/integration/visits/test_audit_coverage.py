"""Every visits route that returns personal data (visit notes, finding notes) writes exactly one audit row."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.audit_coverage import Call, Route, assert_each_audited
from tests.integration.visits.conftest import DISTRICT, Env, bearer, completed

pytestmark = pytest.mark.integration


async def test_every_personal_route_writes_exactly_one_audit_row_and_auditors_see_their_subtree(env: Env):
    cid = (await env.launch())["campaign_id"]
    a = (await env.assignments(cid))[0]
    teacher = bearer("teacher", env.directory.teachers[a["teacher_id"]], a["teacher_id"])
    finding = {"student_id": a["student_ids"][0], "category": "left_behind", "severity": "high", "note": "private"}
    r = await env.http.post("/api/v1/visits", json=completed(a["assignment_id"], [finding]), headers=teacher)
    assert r.status_code == 201, r.text
    visit_id = r.json()["visit_id"]

    async def read_visit(h: httpx.AsyncClient, ctx: dict[str, Any]) -> httpx.Response:
        return await h.get(f"/api/v1/visits/{visit_id}", headers=teacher)

    calls: dict[Route, Call] = {("visits", "GET", "/api/v1/visits/{visit_id}"): read_visit}
    rows = await assert_each_audited("visits", calls, env.http, env.settings.database_url, env.settings.db_schema)
    row = rows[("visits", "GET", "/api/v1/visits/{visit_id}")]
    assert row["resource_id"] == visit_id and row["org_path"] == a["org_path"]
    assert set(row["subject_ids"]) == {a["family_id"], a["student_ids"][0]}

    # A refused read is not audited; auditors see reads of visits in their subtree only.
    other_teacher = bearer("teacher", DISTRICT, "somebody-else")
    assert (await env.http.get(f"/api/v1/visits/{visit_id}", headers=other_teacher)).status_code == 403
    mine = (await env.http.get("/api/v1/audit/visits/reads", headers=bearer("auditor", DISTRICT))).json()["items"]
    assert [(e["resource_type"], e["resource_id"], e["subject"]) for e in mine] == [("visit", visit_id, row["subject"])]
    theirs = await env.http.get("/api/v1/audit/visits/reads", headers=bearer("auditor", "/620400/620403"))
    assert theirs.json()["items"] == []
