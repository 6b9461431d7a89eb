"""Guidance topics are codes from the configured vocabulary: free text never reaches the visit's event."""

from __future__ import annotations

import pytest

from services.visits.domain.checklist import guidance_topics
from shared.contracts.visits import VISIT
from tests.integration.visits.conftest import DISTRICT, Env, bearer, completed

pytestmark = pytest.mark.integration


async def test_free_text_topics_are_refused_and_events_carry_codes(env: Env):
    cid = (await env.launch())["campaign_id"]
    a, b, c = (await env.assignments(cid))[:3]
    admin = bearer("district_admin", DISTRICT)

    vocabulary = (await env.http.get("/api/v1/guidance-topics", headers=admin)).json()["items"]
    assert {t["code"] for t in vocabulary} == set(guidance_topics())
    assert all(t["zh"] and t["en"] for t in vocabulary)

    free_text = "妈妈在外打工，孩子由爷爷照顾，情绪低落"  # what a teacher might type: personal details of a child
    r = await env.http.post(
        "/api/v1/visits", json=completed(a["assignment_id"], guidance_topics=[free_text]), headers=admin
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"] == "/guidance_topics/0"

    batch = [
        completed(b["assignment_id"], guidance_topics=["reading_at_home", "Reading at home"]),
        completed(c["assignment_id"], guidance_topics=["reading_at_home", "screen_time"]),
    ]
    r = await env.http.post("/api/v1/visits/batch", json={"visits": batch}, headers=admin)
    assert [x["result"] for x in r.json()["results"]] == ["rejected", "stored"]
    assert r.json()["results"][0]["errors"][0]["pointer"] == "/visits/0/guidance_topics/1"

    events = await env.events(VISIT, expect=1)
    recorded = [e["value"]["data"] for e in events if e["value"]["type"] == "visits.visit.completed.v1"]
    assert [v["guidance_topics"] for v in recorded] == [["reading_at_home", "screen_time"]]
    assert free_text not in str(events)
