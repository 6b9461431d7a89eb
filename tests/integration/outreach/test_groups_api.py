"""The special-group register through real HTTP: directory flags, findings, manual entries, verification, lists."""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from services.outreach.app import create
from services.outreach.settings import OutreachSettings
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import GROUP
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.outreach.helpers import (
    DISTRICT,
    by_type,
    class_path,
    family,
    finding,
    publish,
    school,
    student,
)
from tests.integration.outreach.test_referrals_api import one_by_one

pytestmark = pytest.mark.integration


def bearer(**kw: object) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(**kw)}  # type: ignore[arg-type]


BUREAU = bearer(role="bureau_admin", org_path="/620400", subject="bureau-1")
SCHOOL_ADMIN = bearer(role="school_admin", org_path=school(), subject="sa-1")
OTHER_SCHOOL = bearer(role="school_admin", org_path=f"{DISTRICT}/s999", subject="sa-9")
CIVIL = bearer(role="department_partner", org_path="/620400", department="civil_affairs", subject="ca-1")
TEACHER = bearer(role="teacher", org_path=school(), staff_id="t-1", subject="t-1")


async def test_register_from_directory_findings_and_by_hand(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    async with serve(create(settings, ManualClock())) as url, httpx.AsyncClient(base_url=url) as http:
        # Parents working away (family first, students later: out of order across topics) → left-behind.
        await publish(settings, [family("fam-1", ["stu-1", "stu-2"], away=True)])
        await publish(settings, [student("stu-1", family_id="fam-1"), student("stu-2", family_id="fam-1")])
        await publish(settings, [student("stu-4"), student("stu-5")])
        await publish(settings, [finding("stu-3", Category.DISABILITY, Severity.MEDIUM)])

        async def members(headers: dict[str, str], **params: str) -> list[dict]:
            r = await http.get("/api/v1/groups/members", headers=headers, params=params)
            return r.json()["items"] if r.status_code == 200 else []

        listed = await wait_for(lambda: _at_least(members(BUREAU), 3), timeout=15)
        assert sorted((m["student_id"], m["group"], m["source"]) for m in listed) == [
            ("stu-1", "left_behind", "directory_flag"),
            ("stu-2", "left_behind", "directory_flag"),
            ("stu-3", "disability", "visit_finding"),
        ]
        assert all(m["org_path"] == class_path() and m["verified"] is None for m in listed)
        paged = await one_by_one(http, "/api/v1/groups/members", BUREAU, "membership_id")
        assert paged == [m["membership_id"] for m in await members(BUREAU)]  # keyset pages, the same list

        # By hand: a school enters a child (its class path comes from the directory: another one is refused); the
        # same child and group again is a conflict; a child the directory does not know is not found (404 at the field).
        body = {"student_id": "stu-4", "group": "family_hardship", "org_path": class_path()}
        elsewhere = {**body, "org_path": f"{DISTRICT}/s999/g1/c1"}
        r = await http.post("/api/v1/groups/members", headers=SCHOOL_ADMIN, json=elsewhere)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/org_path"
        unknown = {"student_id": "nobody", "group": "family_hardship"}
        r = await http.post("/api/v1/groups/members", headers=SCHOOL_ADMIN, json=unknown)
        assert r.status_code == 404 and r.json()["errors"][0]["pointer"] == "/student_id"
        r = await http.post("/api/v1/groups/members", headers=SCHOOL_ADMIN, json=body)
        assert r.status_code == 201 and r.json()["source"] == "school"
        assert (await http.post("/api/v1/groups/members", headers=SCHOOL_ADMIN, json=body)).status_code == 409
        assert (await http.post("/api/v1/groups/members", headers=OTHER_SCHOOL, json=body)).status_code == 403
        assert (await http.post("/api/v1/groups/members", headers=TEACHER, json=body)).status_code == 403
        bad = await http.post("/api/v1/groups/members", headers=SCHOOL_ADMIN, json={**body, "group": "tall"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/group"
        # A department registers and verifies only the group of a child referred to it.
        dept = {"student_id": "stu-5", "group": "orphaned_or_unaccompanied"}
        assert (await http.post("/api/v1/groups/members", headers=CIVIL, json=dept)).status_code == 403
        await publish(settings, [finding("stu-5", Category.ORPHANED_OR_UNACCOMPANIED, Severity.MEDIUM)])
        orphan = (await wait_for(lambda: _at_least(members(BUREAU, group="orphaned_or_unaccompanied"), 1)))[0]
        await wait_for(lambda: _at_least(_json(http.get("/api/v1/referrals", headers=CIVIL)), 1))
        r = await http.post("/api/v1/groups/members", headers=CIVIL, json={**dept, "group": "disability"})
        assert r.status_code == 403, r.text
        r = await http.post(
            f"/api/v1/groups/members/{listed[0]['membership_id']}/verify", headers=CIVIL, json={"verified": True}
        )
        assert r.status_code == 403, r.text
        assert (await http.post("/api/v1/groups/members", headers=CIVIL, json=dept)).status_code == 409

        # Verification by the department; lists by subtree and filters; counts.
        r = await http.post(
            f"/api/v1/groups/members/{orphan['membership_id']}/verify", headers=CIVIL, json={"verified": True}
        )
        assert r.status_code == 200 and r.json()["verified"] is True and r.json()["verified_by"] == "ca-1"
        assert [m["student_id"] for m in await members(SCHOOL_ADMIN, verified="true")] == ["stu-5"]
        assert len(await members(SCHOOL_ADMIN, group="left_behind")) == 2
        assert await members(OTHER_SCHOOL) == []
        assert (
            await http.get("/api/v1/groups/members", headers=SCHOOL_ADMIN, params={"org_path": DISTRICT})
        ).status_code == 403
        counts = (await http.get("/api/v1/groups/counts", headers=BUREAU)).json()
        assert counts["org_path"] == "/620400"
        assert {c["group"]: (c["members"], c["verified"]) for c in counts["items"]} == {
            "disability": (1, 0),
            "family_hardship": (1, 0),
            "left_behind": (2, 0),
            "orphaned_or_unaccompanied": (1, 1),
        }

        # The flag going away ends directory-only memberships.
        changed = family("fam-1", ["stu-1", "stu-2"], away=False)
        await publish(settings, [changed])
        await wait_for(lambda: _exactly(members(BUREAU, group="left_behind"), 0), timeout=15)
        assert len(await members(BUREAU, group="left_behind", include_ended="true")) == 2

        # A member moving class takes the membership along, said as an event (reporting counts it where it is now).
        await publish(settings, [student("stu-4", cls="c3")])
        await wait_for(
            lambda: _at_least(members(BUREAU, group="family_hardship", org_path=class_path("c3")), 1), timeout=15
        )

        events = by_type(await read_topic(settings.kafka_bootstrap_servers, settings.topic(GROUP), expect=9))
        assert len(events["outreach.group.registered.v1"]) == 5
        assert [e["value"]["data"]["verified"] for e in events["outreach.group.verified.v1"]] == [True]
        ended = events["outreach.group.ended.v1"]
        assert sorted((e["value"]["data"]["student_id"], e["value"]["data"]["reason"]) for e in ended) == [
            ("stu-1", "flag_ended"),
            ("stu-2", "flag_ended"),
        ]
        moved = [e["value"]["data"] for e in events["outreach.group.moved.v1"]]
        assert [(m["student_id"], m["group"], m["org_path"]) for m in moved] == [
            ("stu-4", "family_hardship", class_path("c3"))
        ]


async def _json(coro):
    r = await coro
    return r.json()["items"] if r.status_code == 200 else None


async def _at_least(coro, n: int):
    rows = await coro or []
    return rows if len(rows) >= n else None


async def _exactly(coro, n: int) -> bool:
    return len(await coro) == n


async def test_a_department_cannot_register_children_it_was_not_referred(make_settings):
    """Today a partner registers any child into any group, at an org path of its choosing."""
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    async with serve(create(settings, ManualClock())) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, [student("stu-x")])
        await wait_for(lambda: _student_known(settings, "stu-x"))
        for group in ("orphaned_or_unaccompanied", "disability"):
            body = {"student_id": "stu-x", "group": group, "org_path": f"{DISTRICT}/s999/g1/c1"}
            r = await http.post("/api/v1/groups/members", headers=CIVIL, json=body)
            assert r.status_code in (403, 422), r.text
            r = await http.post("/api/v1/groups/members", headers=CIVIL, json={"student_id": "stu-x", "group": group})
            assert r.status_code == 403, r.text
        assert (await http.get("/api/v1/groups/counts", headers=BUREAU)).json()["items"] == []


async def _student_known(settings: OutreachSettings, student_id: str) -> bool:
    conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.db_schema})
    try:
        return bool(await conn.fetchval("SELECT 1 FROM students WHERE student_id = $1", student_id))
    finally:
        await conn.close()
