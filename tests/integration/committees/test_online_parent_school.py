"""Online parent schools end to end on the real stack: an online session gets a join link, the online platform
reports attendance through the API, completion per guardian, and reporting shows online vs in-person participation
and the lecturer group (members from its events, lectures by lecturer, reach)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.reporting.app import create as create_reporting
from services.reporting.settings import ReportingSettings
from shared.testing.fixtures import serve, wait_for
from tests.integration.committees.conftest import BUREAU
from tests.integration.committees.test_cooperation import guardians_of_class

pytestmark = pytest.mark.integration


async def test_online_session_attendance_completion_and_lecturer_group_reach_reporting(svc, small_city, make_settings):
    reporting_settings = make_settings(
        ReportingSettings, refresh_interval_seconds=0.1, gauges_interval_seconds=0.5, summary_cache_seconds=0
    )
    city, h = small_city, BUREAU
    await svc.run_import(body=_city_json(city))
    school = next(u for u in city.org_units if u.level == "school")
    c1 = next(
        u.org_unit_id for u in city.org_units if u.level == "class" and u.parent_id.startswith(school.org_unit_id)
    )
    g1, g2, g3 = (await guardians_of_class(svc, c1))[:3]
    school_path = (await svc.http.get(f"/api/v1/org-units/{school.org_unit_id}", headers=h)).json()["org_path"]

    r = await svc.http.post(
        "/api/v1/parent-schools",
        json={"org_unit_id": school.org_unit_id, "kind": "online", "name": "线上家长学校"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    ps = r.json()["parent_school_id"]
    base = f"/api/v1/parent-schools/{ps}"

    # An online session gets the platform's join link; a mixed one keeps the meeting link given; in person: none.
    online = (await svc.http.post(f"{base}/sessions", json=_session("online"), headers=h)).json()
    assert online["join_url"] == f"https://hss.localhost/parent-school/sessions/{online['session_id']}"
    mixed = await svc.http.post(
        f"{base}/sessions", json={**_session("mixed"), "join_url": "https://meet.example/abc"}, headers=h
    )
    assert mixed.status_code == 201 and mixed.json()["join_url"] == "https://meet.example/abc"
    bad = await svc.http.post(
        f"{base}/sessions", json={**_session("in_person"), "join_url": "https://meet.example/x"}, headers=h
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/join_url"
    in_person = (await svc.http.post(f"{base}/sessions", json=_session("in_person"), headers=h)).json()
    assert in_person["join_url"] is None
    detail = (await svc.http.get(base, headers=h)).json()
    assert {s["session_id"]: s["join_url"] for s in detail["sessions"]}[online["session_id"]] == online["join_url"]

    for s in (online, in_person):
        r = await svc.http.post(
            f"{base}/sessions/{s['session_id']}/enrolments", json={"guardian_ids": [g1, g2, g3]}, headers=h
        )
        assert r.status_code == 200, r.text
    # The online platform reports minutes connected: 45 min attends, 5 min does not (min 20).
    report = {"records": [{"guardian_id": g1, "minutes": 45}, {"guardian_id": g2, "minutes": 5}]}
    r = await svc.http.post(f"{base}/sessions/{online['session_id']}/online-attendance", json=report, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["attended"], r.json()["changed"]) == (1, 2)
    again = await svc.http.post(f"{base}/sessions/{online['session_id']}/online-attendance", json=report, headers=h)
    assert again.json()["changed"] == 0  # the same report again publishes nothing
    wrong = await svc.http.post(f"{base}/sessions/{in_person['session_id']}/online-attendance", json=report, headers=h)
    assert wrong.status_code == 409
    r = await svc.http.post(
        f"{base}/sessions/{in_person['session_id']}/attendance",
        json={"records": [{"guardian_id": g1, "attended": True}, {"guardian_id": g3, "attended": True}]},
        headers=h,
    )
    assert r.status_code == 200, r.text
    for s in (online, in_person):
        assert (await svc.http.post(f"{base}/sessions/{s['session_id']}/held", headers=h)).status_code == 200

    completion = (await svc.http.get(f"{base}/completion", headers=h)).json()
    by_guardian = {c["guardian_id"]: c for c in completion["items"]}
    assert by_guardian[g1] | {"guardian_id": "-"} == {
        "guardian_id": "-",
        "sessions_held": 2,
        "attended": 2,
        "attended_online": 1,
        "attended_in_person": 1,
        "completed": True,
    }
    assert not by_guardian[g2]["completed"] and by_guardian[g2]["attended"] == 0
    assert by_guardian[g3]["attended_in_person"] == 1 and not by_guardian[g3]["completed"]  # 1 of 2 < 80 %
    page = (await svc.http.get(f"{base}/completion", params={"limit": 1}, headers=h)).json()
    assert len(page["items"]) == 1 and page["next_cursor"]

    # The lecturer group: two members join, one leaves; lectures by the one who stays.
    staff = [st.staff_id for st in city.staff if st.org_unit_id == school.org_unit_id][:2]
    lecturers = []
    for staff_id in staff:
        r = await svc.http.post(
            "/api/v1/lecturers", json={"org_unit_id": school.org_unit_id, "staff_id": staff_id}, headers=h
        )
        assert r.status_code == 201, r.text
        lecturers.append(r.json()["lecturer_id"])
    stays, leaves = lecturers
    grades = [u.org_unit_id for u in city.org_units if u.level == "grade" and u.parent_id == school.org_unit_id][:2]
    for n in (60, 40):
        lecture = {
            "lecturer_id": stays,
            "topic": "family_education_promotion_law",
            "given_on": "2026-10-15",
            "audience_org_unit_ids": grades,
            "headcount": n,
        }
        assert (await svc.http.post("/api/v1/lectures", json=lecture, headers=h)).status_code == 201
    assert (await svc.http.delete(f"/api/v1/lecturers/{leaves}", headers=h)).status_code == 200
    late = await svc.http.post("/api/v1/lectures", json={**lecture, "lecturer_id": leaves}, headers=h)
    assert late.status_code == 409
    events = {e["type"] for e in await svc.events()}
    assert {"committees.lecturer.joined.v1", "committees.lecturer.left.v1"} <= events
    attendance = [e["data"] for e in await svc.events() if e["type"].endswith("attendance_recorded.v1")]
    assert sorted((a["guardian_id"] == g1, a["online"], a["attended"]) for a in attendance) == sorted(
        [(True, True, True), (False, True, False), (True, False, True), (False, False, True)]
    )
    await svc.drained()

    # Reporting, from committees' events: online vs in-person participation and the lecturer group.
    async with serve(create_reporting(reporting_settings)) as url, httpx.AsyncClient(base_url=url) as rep:

        async def structure() -> dict[str, Any] | None:
            r = await rep.get("/api/v1/summary", params={"org_path": school_path}, headers=h)
            if r.status_code != 200:
                return None
            s: dict[str, Any] = r.json()["figures"]["structure"]
            group = s["lecturer_group"]
            return s if s["sessions_held"] == 2 and group["reach"]["lectures"] == 2 and group["members"] == 1 else None

        doc: dict[str, Any] = await wait_for(structure, timeout=90, interval=0.5)
    assert doc["attendance"]["by_channel"] == {"online": 1, "in_person": 2, "unknown": 0}
    assert doc["attendance"]["attended"] == 3 and doc["attendance"]["enrolled"] == 6
    assert doc["attendance"]["online_share"] == round(1 / 3, 4)
    group = doc["lecturer_group"]
    assert group["members"] == 1 and group["lecturers_lecturing"] == 1
    assert group["top_lecturers"] == {stays: 2}
    assert group["reach"] == {"lectures": 2, "audience": 100, "org_units": 2 * len(grades)}


def _session(mode: str) -> dict[str, Any]:
    return {"topic": "如何陪伴留守儿童", "held_on": "2026-10-12", "mode": mode, "speaker": "张老师"}


def _city_json(city: Any) -> dict[str, Any]:
    from demo import citygen

    return citygen.to_json(city)
