"""Duplicate children across the services on the real stack: the same child registered twice is reported as a likely
duplicate, the national ID stays unique, and a merge leaves one child with one open case, counted once."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.committees.app import create as committees
from services.committees.settings import Settings as CommitteesSettings
from services.outreach.app import create as outreach
from services.outreach.settings import OutreachSettings
from services.reporting.app import create as reporting
from services.reporting.settings import ReportingSettings
from services.visits.app import create as visits
from services.visits.settings import VisitsSettings
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CASE
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.outreach.helpers import finding, publish

pytestmark = pytest.mark.integration

CITY, DISTRICT = "/620400", "/620400/620402"
BUREAU = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path=CITY, subject="bureau-1")}
PHONE = "13800001111"


def city() -> dict[str, Any]:
    """Two schools of one county; a child registered in the first school (and soon again in the second)."""
    units: list[dict[str, Any]] = [
        {"org_unit_id": "620400", "parent_id": None, "level": "city", "name": "白银市"},
        {"org_unit_id": "620402", "parent_id": "620400", "level": "district", "name": "白银区"},
    ]
    staff = []
    for s in ("s1", "s2"):
        units += [
            {"org_unit_id": s, "parent_id": "620402", "level": "school", "name": s, "school_type": "primary"},
            {"org_unit_id": f"{s}-g1", "parent_id": s, "level": "grade", "name": "一年级"},
            {"org_unit_id": f"{s}-c1", "parent_id": f"{s}-g1", "level": "class", "name": "一班"},
        ]
        staff += [
            {"staff_id": f"t-{s}", "name": "班主任", "org_unit_id": s, "roles": ["class_teacher"],
             "class_ids": [f"{s}-c1"], "head_class_id": f"{s}-c1"},
            {"staff_id": f"m-{s}", "name": "心理老师", "org_unit_id": s, "roles": ["mental_health_teacher"]},
        ]  # fmt: skip
    return {
        "org_units": units,
        "staff": staff,
        "families": [
            {"family_no": "F1", "parents_work_away": True, "living_arrangement": "grandparents"},
        ],
        "guardians": [
            {"guardian_no": "P-F1", "family_no": "F1", "name": "奶奶", "relation": "grandmother", "phone": PHONE},
        ],
        "students": [
            {
                "student_no": "N1",
                "name": "王晓明",
                "birth_date": "2015-03-01",
                "national_id": "620402201503010018",
                "class_id": "s1-c1",
                "family_no": "F1",
            },
        ],
    }


async def _json(http: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await http.get(path, headers=BUREAU, params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_merge_leaves_one_child_with_one_open_case_counted_once(make_settings) -> None:
    cm = make_settings(CommitteesSettings)
    out = make_settings(OutreachSettings, scheduler_enabled=False)
    rep = make_settings(ReportingSettings, refresh_interval_seconds=0.2, summary_cache_seconds=0)
    vis = make_settings(VisitsSettings)
    async with contextlib.AsyncExitStack() as running:
        urls = {
            "c": await running.enter_async_context(serve(committees(cm))),
            "o": await running.enter_async_context(serve(outreach(out, clock := ManualClock()))),
            "r": await running.enter_async_context(serve(reporting(rep))),
            "v": await running.enter_async_context(serve(visits(vis))),
        }
        c = await running.enter_async_context(httpx.AsyncClient(base_url=urls["c"], timeout=30))
        o = await running.enter_async_context(httpx.AsyncClient(base_url=urls["o"], timeout=30))
        r = await running.enter_async_context(httpx.AsyncClient(base_url=urls["r"], timeout=30))

        job = (await c.post("/api/v1/imports", json=city(), headers=BUREAU)).json()
        await wait_for(lambda: _done(c, job["import_id"]), timeout=60)
        finished = await _json(c, f"/api/v1/imports/{job['import_id']}")
        assert finished["counts"]["students"]["created"] == 1, finished["errors"]
        [first] = (await _json(c, "/api/v1/students"))["items"]
        # The same child registered again at the second school (a homophone typo, the same grandmother's phone).
        fam2 = await _family(c, "F2")
        again = {"student_no": "N2", "name": "王小明", "birth_date": "2015-03-01", "class_id": "s2-c1",
                 "family_id": fam2}  # fmt: skip
        taken = await c.post("/api/v1/students", json={**again, "national_id": "620402201503010018"}, headers=BUREAU)
        assert taken.status_code == 409 and taken.json()["errors"][0]["pointer"] == "/national_id"
        created = await c.post("/api/v1/students", json=again, headers=BUREAU)
        assert created.status_code == 201, created.text
        dup = created.json()
        assert dup["duplicate_candidates"] == [
            {
                "student_id": first["student_id"],
                "score": 1.0,
                "reasons": ["same_name", "same_birth_date", "same_county", "shared_guardian_phone"],
            }
        ]
        listed = await _json(c, f"/api/v1/students/{first['student_id']}/duplicates")
        assert [x["student_id"] for x in listed["candidates"]] == [dup["student_id"]]

        # Both records get a finding before anyone notices: two cases for one child.
        await publish(
            out,
            [
                finding(first["student_id"], Category.LEFT_BEHIND, Severity.HIGH, cls="x").model_copy(
                    update={"org_path": first["org_path"]}
                ),
                finding(dup["student_id"], Category.SAFETY_RISK, Severity.URGENT, cls="x").model_copy(
                    update={"org_path": dup["org_path"]}
                ),
            ],
        )
        await wait_for(lambda: _open_cases(o, first["student_id"], dup["student_id"], n=2), timeout=30)
        await wait_for(lambda: _reported_open(r, 2), timeout=30)

        clock.advance(timedelta(hours=1))  # outreach's clock: its merge comes after the cases it changes
        merged = await c.post(
            f"/api/v1/students/{first['student_id']}/merge", json={"duplicate_id": dup["student_id"]}, headers=BUREAU
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["merged_id"] == dup["student_id"] and merged.json()["student_id"] == first["student_id"]
        again_merge = await c.post(
            f"/api/v1/students/{first['student_id']}/merge", json={"duplicate_id": dup["student_id"]}, headers=BUREAU
        )
        assert again_merge.status_code == 409 and again_merge.json()["errors"][0]["pointer"] == "/duplicate_id"

        # Outreach: one child, one open case, holding both findings, at the worse risk.
        # The duplicate holds nothing once the merge is applied; only then is the survivor's case read (one read per
        # student could straddle the merge: the survivor's case before it, the duplicate's after it).
        await wait_for(lambda: _holds_no_case(o, dup["student_id"]), timeout=30)
        cases = await _open_cases(o, first["student_id"], n=1)
        assert cases is not None
        [case] = cases
        assert case["student_id"] == first["student_id"] and case["risk_level"] == "urgent"
        assert sorted(case["categories"]) == ["left_behind", "safety_risk"]
        detail = await _json(o, f"/api/v1/cases/{case['case_id']}")
        assert len(detail["findings"]) == 2
        assert (await _json(o, "/api/v1/cases", student_id=dup["student_id"]))["items"] == []
        # What changed for the surviving case is published: its new risk and categories, and the carers who came
        # with the duplicate's case (told of it like any assignment).
        events = await read_topic(out.kafka_bootstrap_servers, out.topic(CASE), expect=5)
        survivor = [
            m["value"]["data"]
            for m in events
            if m["value"]["type"] == "outreach.case.assigned.v1" and m["value"]["data"]["case_id"] == case["case_id"]
        ]
        before, after = survivor[0], survivor[-1]
        assert (after["risk_level"], sorted(after["categories"])) == ("urgent", ["left_behind", "safety_risk"])
        assert after["student_id"] == first["student_id"]
        joined = {x["staff_id"] for x in after["carers"]}
        assert joined and not joined & {x["staff_id"] for x in before["carers"]}
        assert joined <= {x["staff_id"] for x in detail["carers"]}
        # Reporting counts the child's case once (the duplicate's closed as merged).
        figures = await wait_for(lambda: _reported_open(r, 1), timeout=30)
        assert figures["cases"]["closed"] == 1
        # Committees: the duplicate is gone from lists, the survivor holds the national ID.
        students = (await _json(c, "/api/v1/students"))["items"]
        assert [s["student_id"] for s in students] == [first["student_id"]]

        # An import registering the child once more reports it with its likely duplicate (the survivor only).
        row = {"student_no": "N3", "name": "王晓明", "birth_date": "2015-03-01", "class_id": "s2-c1", "family_no": "F1"}
        job = (await c.post("/api/v1/imports", json={"students": [row]}, headers=BUREAU)).json()
        await wait_for(lambda: _done(c, job["import_id"]), timeout=60)
        reported = (await _json(c, f"/api/v1/imports/{job['import_id']}"))["duplicate_candidates"]
        [entry] = reported
        assert [x["student_id"] for x in entry["candidates"]] == [first["student_id"]]
        assert entry["candidates"][0]["score"] >= 0.8


async def _done(c: httpx.AsyncClient, import_id: str) -> bool:
    return (await _json(c, f"/api/v1/imports/{import_id}"))["status"] == "succeeded"


async def _family(c: httpx.AsyncClient, family_no: str) -> str:
    """A family registered by hand, its grandmother with the same phone as the first child's."""
    guardian = {"guardian_no": f"P-{family_no}", "name": "奶奶", "relation": "grandmother", "phone": PHONE}
    body = {"family_no": family_no, "parents_work_away": True, "living_arrangement": "grandparents",
            "guardians": [guardian]}  # fmt: skip
    r = await c.post("/api/v1/families", json=body, headers=BUREAU)
    assert r.status_code == 201, r.text
    return str(r.json()["family_id"])


async def _open_cases(o: httpx.AsyncClient, *student_ids: str, n: int) -> list[dict[str, Any]] | None:
    found = [x for sid in student_ids for x in (await _json(o, "/api/v1/cases", student_id=sid))["items"]]
    open_ = [x for x in found if x["state"] != "closed"]
    return open_ if len(open_) == n else None


async def _holds_no_case(o: httpx.AsyncClient, student_id: str) -> bool:
    return (await _json(o, "/api/v1/cases", student_id=student_id))["items"] == []


async def _reported_open(r: httpx.AsyncClient, n: int) -> dict[str, Any] | None:
    figures: dict[str, Any] = (await _json(r, "/api/v1/summary", org_path=CITY))["figures"]
    return figures if figures["cases"]["open"] == n else None
