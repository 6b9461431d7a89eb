"""The Ten Requirements checked from the record through HTTP: a late record and a visit alone are stored, flagged
with the reason, and their facts published; a visit in pairs recorded in time is not flagged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.visits.domain.checklist import load
from shared.contracts.visits import VISIT
from tests.integration.visits.conftest import DISTRICT, TODAY, Env, bearer, completed

pytestmark = pytest.mark.integration

DERIVED = {"record_within_48h", "visited_in_pairs"}


def declared() -> list[dict[str, object]]:
    """Every answer but the derived ones (visits works those out)."""
    return [{"item_id": i.id, "answer": "yes"} for i in load().items(load().current) if i.id not in DERIVED]


async def test_late_or_lone_visits_are_flagged_not_refused_and_their_requirements_are_facts(env: Env):
    cid = (await env.launch())["campaign_id"]
    late, alone, good = (await env.assignments(cid))[:3]
    admin = bearer("district_admin", DISTRICT)
    colleague = {"teacher_ids": ["t-colleague"], "guardian_ids": []}
    now = datetime.now(UTC)

    r = await env.http.post(  # visited five days ago, recorded now: too late
        "/api/v1/visits",
        json=completed(
            late["assignment_id"], visited_on=(TODAY - timedelta(days=5)).isoformat(), participants=colleague,
            checklist=declared(),
        ),
        headers=admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    late_id = r.json()["visit_id"]
    r = await env.http.post(  # in time (a known time today) but alone, although the teacher declared pairs
        "/api/v1/visits",
        json=completed(
            alone["assignment_id"],
            visited_at=(now - timedelta(hours=2)).isoformat(),
            checklist=[*declared(), {"item_id": "visited_in_pairs", "answer": "yes"}],
        ),
        headers=admin,
    )
    assert r.status_code == 201, r.text
    alone_id = r.json()["visit_id"]
    r = await env.http.post(
        "/api/v1/visits", json=completed(good["assignment_id"], participants=colleague), headers=admin
    )
    assert r.status_code == 201, r.text
    good_id = r.json()["visit_id"]

    flags = {}
    for visit_id in (late_id, alone_id, good_id):
        doc = (await env.http.get(f"/api/v1/visits/{visit_id}", headers=admin)).json()
        flags[visit_id] = [(f["item_id"], f["reason"]) for f in doc["flags"]]
        derived = {x["item_id"]: x["answer"] for x in doc["requirements"] if x["derived"]}
        assert set(derived) == DERIVED
    assert [i for i, _ in flags[late_id]] == ["record_within_48h"]
    assert "after the visit (allowed: 48 h)" in flags[late_id][0][1]
    assert flags[alone_id] == [
        ("visited_in_pairs", "an in-home visit made alone (no colleague among the participants) although declared yes")
    ]
    assert flags[good_id] == []

    events = await env.events(VISIT, expect=3)
    completed_events = {
        e["value"]["data"]["visit_id"]: e["value"]["data"]
        for e in events
        if e["value"]["type"] == "visits.visit.completed.v1"
    }
    assert [f["item_id"] for f in completed_events[late_id]["flags"]] == ["record_within_48h"]
    assert completed_events[good_id]["flags"] == []
    late_facts = {x["item_id"]: (x["answer"], x["derived"]) for x in completed_events[late_id]["requirements"]}
    assert late_facts["record_within_48h"] == ("no", True) and late_facts["visited_in_pairs"] == ("yes", True)
    assert late_facts["no_gifts_or_meals"] == ("yes", False)
    assert completed_events[alone_id]["visited_at"] is not None
