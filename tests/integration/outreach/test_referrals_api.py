"""Through real HTTP: department tokens see only their referrals, detail reads are audited, cases move on."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from services.outreach.app import create
from services.outreach.settings import OutreachSettings
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CASE, REFERRAL_TOPICS
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.outreach.helpers import (
    DISTRICT,
    by_type,
    class_path,
    family,
    finding,
    publish,
    school,
    school_staff,
    student,
)

pytestmark = pytest.mark.integration


def bearer(**kw: object) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(**kw)}  # type: ignore[arg-type]


DPF = bearer(role="department_partner", org_path="/620400", department="disabled_persons_federation", subject="dpf-1")
WF = bearer(role="department_partner", org_path="/620400", department="womens_federation", subject="wf-1")
AUDITOR = bearer(role="auditor", org_path="/620400", subject="aud-1")
READS = "/api/v1/audit/outreach/reads"
SCHOOL_ADMIN = bearer(role="school_admin", org_path=school(), subject="sa-1")
DISTRICT_ADMIN = bearer(role="district_admin", org_path=DISTRICT, subject="da-1")
OTHER_SCHOOL_ADMIN = bearer(role="school_admin", org_path=f"{DISTRICT}/s999", subject="sa-9")
CLASS_TEACHER = bearer(role="teacher", org_path=school(), staff_id="t-head-c2", subject="t-head-c2")
OTHER_TEACHER = bearer(role="teacher", org_path=school(), staff_id="t-head-c9", subject="t-head-c9")
MH_TEACHER = bearer(role="mental_health_teacher", org_path=school(), staff_id="mh-1", subject="mh-1")


async def test_department_sees_only_its_referrals_and_reads_are_audited(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    async with serve(create(settings, ManualClock())) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, [*school_staff(), student("stu-d"), family("fam-stu-d", ["stu-d"], away=True)])
        await _directory_loaded(http, settings)
        await publish(
            settings,
            [
                finding("stu-d", Category.DISABILITY, Severity.HIGH),
                finding("stu-w", Category.FAMILY_CONFLICT, Severity.HIGH),
            ],
        )
        mine = await wait_for(lambda: _json(http.get("/api/v1/referrals", headers=DPF)), timeout=15)
        assert [(r["department"], r["category"], r["state"]) for r in mine] == [
            ("disabled_persons_federation", "disability", "requested")
        ]
        # the other child's finding is on another partition: it may be applied a moment later
        theirs = await wait_for(lambda: _json(http.get("/api/v1/referrals", headers=WF)), timeout=15)
        assert [r["department"] for r in theirs] == ["womens_federation"]
        every = (await http.get("/api/v1/referrals", headers=SCHOOL_ADMIN)).json()
        assert len(every["items"]) == 2 and every["next_cursor"] is None
        paged = await one_by_one(http, "/api/v1/referrals", SCHOOL_ADMIN, "referral_id")
        assert paged == [r["referral_id"] for r in every["items"]]
        dpf_ref, wf_ref = mine[0]["referral_id"], theirs[0]["referral_id"]

        # Another department's referral does not exist as far as this token is concerned.
        assert (await http.get(f"/api/v1/referrals/{wf_ref}", headers=DPF)).status_code == 404
        assert (await http.post(f"/api/v1/referrals/{wf_ref}/acknowledge", headers=DPF)).status_code == 404
        # A district office of the same department outside the child's district sees nothing.
        elsewhere = bearer(
            role="department_partner", org_path="/620400/620499", department="disabled_persons_federation"
        )
        assert (await http.get("/api/v1/referrals", headers=elsewhere)).json()["items"] == []
        assert (await http.get(f"/api/v1/referrals/{dpf_ref}", headers=elsewhere)).status_code == 404
        # Admins of another school see nothing; teachers cannot list referrals.
        assert (await http.get("/api/v1/referrals", headers=OTHER_SCHOOL_ADMIN)).json()["items"] == []
        assert (await http.get("/api/v1/referrals", headers=CLASS_TEACHER)).status_code == 403

        detail = await http.get(f"/api/v1/referrals/{dpf_ref}", headers=DPF)
        assert detail.status_code == 200
        d = detail.json()
        # Only what the referral needs: the child is also left behind, which is not this department's business.
        assert d["child"] == {
            "student_id": "stu-d",
            "class_path": class_path(),
            "school_path": school(),
            "living_arrangement": "grandparents",
            "groups": ["disability"],
        }
        assert (d["category"], d["urgency"]) == ("disability", "high")
        assert set(d["case"]) == {"case_id", "state", "opened_at", "contact_due", "first_contacted_at", "carers"}
        assert [c["staff_id"] for c in d["case"]["carers"]] == ["t-head-c2"]

        # The department answers: acknowledge → accept → resolve, with notes kept here only.
        r = await http.post(f"/api/v1/referrals/{dpf_ref}/accept", headers=DPF, json={"note": "x"})
        assert r.status_code == 409
        for step, state in [("acknowledge", "acknowledged"), ("accept", "accepted"), ("resolve", "resolved")]:
            r = await http.post(f"/api/v1/referrals/{dpf_ref}/{step}", headers=DPF, json={"note": f"{step} note"})
            assert r.status_code == 200 and r.json()["state"] == state
        r = await http.post(f"/api/v1/referrals/{wf_ref}/acknowledge", headers=WF)
        assert r.status_code == 200
        r = await http.post(f"/api/v1/referrals/{wf_ref}/decline", headers=WF, json={"note": "not ours"})
        assert r.json()["state"] == "declined"
        assert (await http.get(f"/api/v1/referrals/{dpf_ref}", headers=DPF)).json()["notes"][2][
            "note"
        ] == "resolve note"

        # The audit log shows who read what; only auditors may query it.
        assert (await http.get(READS, headers=DPF)).status_code == 403
        log = (await http.get(READS, headers=AUDITOR, params={"resource_id": dpf_ref})).json()["items"]
        assert [(e["subject"], e["department"], e["action"], e["resource_type"], e["subject_ids"]) for e in log] == [
            ("dpf-1", "disabled_persons_federation", "read", "referral", ["stu-d"]),
            ("dpf-1", "disabled_persons_federation", "read", "referral", ["stu-d"]),
        ]
        assert log[0]["roles"] == ["department_partner"] and log[0]["org_path"] == class_path()
        assert log[0]["reader_path"] == "/620400" and log[0]["request_id"]
        refused = (await http.get(READS, headers=AUDITOR, params={"resource_id": wf_ref})).json()["items"]
        assert refused == []  # a refused read returned nothing, so nothing was disclosed
        # An auditor of another school (or district) does not learn which children here have cases or referrals.
        for other_path in (f"{DISTRICT}/s999", "/620400/620499"):
            other_auditor = bearer(role="auditor", org_path=other_path, subject="aud-9")
            assert (await http.get(READS, headers=other_auditor)).json()["items"] == []
            r = await http.get(READS, headers=other_auditor, params={"org_path": school()})
            assert r.status_code == 403
        school_auditor = bearer(role="auditor", org_path=school(), subject="aud-s")
        both = (await http.get(READS, headers=school_auditor)).json()["items"]
        assert len(both) == 2
        # Newest first, a page at a time: the cursor continues where the first page ended.
        first = (await http.get(READS, headers=school_auditor, params={"limit": 1})).json()
        after = {"limit": 1, "cursor": first["next_cursor"]}
        rest = (await http.get(READS, headers=school_auditor, params=after)).json()
        assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in both]
        assert rest["next_cursor"] is None

        messages = await read_topic(
            settings.kafka_bootstrap_servers, [settings.topic(t) for t in REFERRAL_TOPICS], expect=7
        )
        types = sorted(m["value"]["type"].split(".")[2] for m in messages)
        assert types == ["accepted", "acknowledged", "acknowledged", "declined", "requested", "requested", "resolved"]


async def test_case_flow_contacts_close_with_approval_and_reopen(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, school_staff())
        await _directory_loaded(http, settings)
        await publish(settings, [finding("stu-m", Category.MENTAL_HEALTH, Severity.HIGH, recorded_at=clock.now())])
        await publish(settings, [finding("stu-l", Category.LEFT_BEHIND, Severity.MEDIUM, recorded_at=clock.now())])
        cases = await wait_for(lambda: _json(http.get("/api/v1/cases", headers=SCHOOL_ADMIN), n=2), timeout=15)
        by_student = {c["student_id"]: c for c in cases}
        m_id, l_id = by_student["stu-m"]["case_id"], by_student["stu-l"]["case_id"]
        # Keyset pages give the same list, newest first (both opened at one instant: the id breaks the tie).
        assert await one_by_one(http, "/api/v1/cases", SCHOOL_ADMIN, "case_id") == [c["case_id"] for c in cases]
        forged = await http.get("/api/v1/cases", headers=SCHOOL_ADMIN, params={"cursor": "W10"})  # "[]"
        assert forged.status_code == 422 and forged.json()["errors"][0]["pointer"] == "/query/cursor"

        # Teachers see only the cases they care for; other schools' admins see none.
        mine = (await http.get("/api/v1/cases", headers=MH_TEACHER)).json()["items"]
        assert [c["case_id"] for c in mine] == [m_id]
        assert (await http.get(f"/api/v1/cases/{m_id}", headers=OTHER_TEACHER)).status_code == 403
        assert (await http.get(f"/api/v1/cases/{m_id}", headers=OTHER_SCHOOL_ADMIN)).status_code == 403
        assert (await http.get("/api/v1/cases", headers=OTHER_SCHOOL_ADMIN)).json()["items"] == []
        assert (await http.get("/api/v1/cases", headers=SCHOOL_ADMIN, params={"org_path": DISTRICT})).status_code == 403

        listed = by_student["stu-m"]["version"]
        seen = f'"{listed}"'  # the version an admin's list shows while the carer logs a contact
        contact = {"contacted_at": clock.now().isoformat(), "mode": "phone", "outcome": "agreed weekly talks"}
        r = await http.post(f"/api/v1/cases/{m_id}/contacts", headers=MH_TEACHER, json=contact)
        assert r.status_code == 201 and r.json()["first_contact"] is True
        stale = await http.post(
            f"/api/v1/cases/{m_id}/state", headers={**SCHOOL_ADMIN, "If-Match": seen}, json={"state": "monitoring"}
        )
        assert stale.status_code == 412 and stale.json()["version"] > listed, stale.text
        assert stale.headers["etag"] == f'"{stale.json()["version"]}"'
        r = await http.post(f"/api/v1/cases/{m_id}/contacts", headers=MH_TEACHER, json=contact)
        assert r.json()["first_contact"] is False
        future = {**contact, "contacted_at": (clock.now() + timedelta(days=1)).isoformat()}
        r = await http.post(f"/api/v1/cases/{m_id}/contacts", headers=MH_TEACHER, json=future)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/contacted_at"
        naive = {**contact, "contacted_at": clock.now().replace(tzinfo=None).isoformat()}  # no zone: which time?
        r = await http.post(f"/api/v1/cases/{m_id}/contacts", headers=MH_TEACHER, json=naive)
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/contacted_at"
        r = await http.post(f"/api/v1/cases/{m_id}/state", headers=MH_TEACHER, json={"state": "monitoring"})
        assert r.status_code == 200 and r.headers["etag"] == f'"{r.json()["version"]}"'

        detail = (await http.get(f"/api/v1/cases/{m_id}", headers=MH_TEACHER)).json()
        assert detail["state"] == "monitoring" and detail["contact_due"] is None
        assert [c["mode"] for c in detail["contacts"]] == ["phone", "phone"]
        assert [f["category"] for f in detail["findings"]] == ["mental_health"]

        # Closing takes two people: a carer (or admin) proposes, an administrator over the school who is not the
        # proposer approves or rejects.
        close = {"reason_code": "resolved", "note": "weekly talks helped"}
        assert (await http.post(f"/api/v1/cases/{l_id}/closure", headers=OTHER_TEACHER, json=close)).status_code == 403
        r = await http.post(f"/api/v1/cases/{m_id}/closure", headers=MH_TEACHER, json=close)
        assert r.status_code == 201, r.text
        assert r.json()["proposed_by_role"] == "mental_health_teacher" and r.json()["state"] == "monitoring"
        assert (await http.post(f"/api/v1/cases/{m_id}/closure", headers=MH_TEACHER, json=close)).status_code == 409
        assert (await http.post(f"/api/v1/cases/{m_id}/closure/approve", headers=MH_TEACHER)).status_code == 403
        assert (await http.post(f"/api/v1/cases/{m_id}/closure/approve", headers=OTHER_SCHOOL_ADMIN)).status_code == 403
        pending = (await http.get("/api/v1/cases", headers=SCHOOL_ADMIN, params={"closure_pending": "true"})).json()[
            "items"
        ]
        assert [(c["case_id"], c["closure_pending"], c["state"]) for c in pending] == [(m_id, True, "monitoring")]
        detail = (await http.get(f"/api/v1/cases/{m_id}", headers=SCHOOL_ADMIN)).json()
        assert detail["pending_closure"]["note"] == "weekly talks helped"
        r = await http.post(f"/api/v1/cases/{m_id}/closure/approve", headers=SCHOOL_ADMIN)
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["decided_by_role"], r.json()["proposed_by_role"]) == (
            "closed",
            "school_admin",
            "mental_health_teacher",
        )
        # An administrator's own proposal needs another administrator; a rejection leaves the case as it was.
        assert (await http.post(f"/api/v1/cases/{l_id}/closure", headers=SCHOOL_ADMIN, json=close)).status_code == 201
        assert (await http.post(f"/api/v1/cases/{l_id}/closure/approve", headers=SCHOOL_ADMIN)).status_code == 403
        r = await http.post(f"/api/v1/cases/{l_id}/closure/reject", headers=DISTRICT_ADMIN, json={"note": "not yet"})
        assert r.status_code == 200 and (r.json()["decision"], r.json()["state"]) == ("rejected", "assigned")
        assert (await http.post(f"/api/v1/cases/{l_id}/closure/approve", headers=DISTRICT_ADMIN)).status_code == 409
        assert (await http.post(f"/api/v1/cases/{l_id}/closure", headers=CLASS_TEACHER, json=close)).status_code == 201
        r = await http.post(f"/api/v1/cases/{l_id}/closure/approve", headers=SCHOOL_ADMIN)
        assert r.status_code == 200 and r.json()["state"] == "closed"
        assert (await http.post(f"/api/v1/cases/{l_id}/closure", headers=CLASS_TEACHER, json=close)).status_code == 409
        bad = await http.post(f"/api/v1/cases/{l_id}/closure", headers=SCHOOL_ADMIN, json={"reason_code": "bored"})
        assert bad.status_code == 422
        pending = (await http.get("/api/v1/cases", headers=SCHOOL_ADMIN, params={"closure_pending": "true"})).json()
        assert pending == {"items": [], "next_cursor": None}

        # A new qualifying finding reopens the closed case (same case id); a minor one does not.
        clock.advance(timedelta(days=2))
        await publish(settings, [finding("stu-l", Category.LEARNING_DIFFICULTY, Severity.LOW)])
        await publish(settings, [finding("stu-l", Category.FAMILY_HARDSHIP, Severity.MEDIUM)])
        reopened = await wait_for(
            lambda: _json(
                http.get("/api/v1/cases", headers=SCHOOL_ADMIN, params={"student_id": "stu-l"}), state="assigned"
            ),
            timeout=15,
        )
        assert [c["case_id"] for c in reopened] == [l_id]
        assert reopened[0]["categories"] == ["family_hardship"] and reopened[0]["reopened_at"] is not None

        audit = (await http.get(READS, headers=AUDITOR, params={"resource_type": "case"})).json()["items"]
        assert [(e["subject"], e["resource_id"]) for e in audit] == [("sa-1", m_id), ("mh-1", m_id)]
        events = by_type(await read_topic(settings.kafka_bootstrap_servers, settings.topic(CASE), expect=14))
        assert len(events["outreach.case.contact_logged.v1"]) == 2
        closed = {e["value"]["data"]["case_id"]: e["value"]["data"] for e in events["outreach.case.closed.v1"]}
        assert closed[m_id]["approved_by_role"] == "school_admin"
        assert closed[l_id]["approved_by_role"] == "school_admin"
        proposed = [e["value"]["data"] for e in events["outreach.case.closure_proposed.v1"]]
        # Per case in order (the two cases' events may sit on different partitions).
        assert [p["proposed_by_role"] for p in proposed if p["case_id"] == m_id] == ["mental_health_teacher"]
        assert [p["proposed_by_role"] for p in proposed if p["case_id"] == l_id] == ["school_admin", "teacher"]
        assert "note" not in proposed[0]  # free text stays in outreach
        [rejected] = [e["value"]["data"] for e in events["outreach.case.closure_rejected.v1"]]
        assert (rejected["case_id"], rejected["rejected_by_role"]) == (l_id, "district_admin")
        assert [e["value"]["data"]["case_id"] for e in events["outreach.case.reopened.v1"]] == [l_id]


async def one_by_one(http: httpx.AsyncClient, path: str, headers: dict[str, str], key: str, **params: str) -> list[str]:
    """The `key` of each item of a list walked one item per page, following `next_cursor` to the end."""
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": "1"} | ({"cursor": cursor} if cursor else {})
        page = (await http.get(path, headers=headers, params=query)).raise_for_status().json()
        assert len(page["items"]) <= 1
        ids += [item[key] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def _json(request, *, n: int = 1, state: str | None = None):
    r = await request
    body = r.json()["items"] if r.status_code == 200 else []
    if state is not None:
        body = [x for x in body if x["state"] == state]
    return body if len(body) >= n else None


async def _directory_loaded(http: httpx.AsyncClient, settings: OutreachSettings) -> None:
    """Wait until the directory copy has the school's staff (findings would otherwise find no carer yet)."""
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        await wait_for(lambda: conn.fetchval(f'SELECT count(*) = 4 FROM "{settings.db_schema}".staff'), timeout=15)
    finally:
        await conn.close()


async def test_referrals_and_memberships_have_versions_a_stale_if_match_changes_nothing(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    async with serve(create(settings, ManualClock())) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, [*school_staff(), student("stu-v")])
        await publish(settings, [finding("stu-v", Category.DISABILITY, Severity.HIGH)])

        async def referrals() -> list[dict]:
            return (await http.get("/api/v1/referrals", headers=DPF)).json()["items"]

        [ref] = await wait_for(referrals, timeout=15)
        one = f"/api/v1/referrals/{ref['referral_id']}"
        read = await http.get(one, headers=DPF)
        assert read.headers["etag"] == f'"{read.json()["version"]}"' == f'"{ref["version"]}"'
        stale = await http.post(f"{one}/acknowledge", headers={**DPF, "If-Match": '"99"'})
        assert stale.status_code == 412 and stale.json()["version"] == ref["version"], stale.text
        assert (await http.get(one, headers=DPF)).json()["state"] == "requested"
        acked = await http.post(f"{one}/acknowledge", headers={**DPF, "If-Match": read.headers["etag"]})
        assert acked.status_code == 200 and acked.json()["version"] > ref["version"], acked.text
        assert acked.headers["etag"] == f'"{acked.json()["version"]}"'

        async def memberships() -> list[dict]:
            r = await http.get("/api/v1/groups/members", headers=SCHOOL_ADMIN)
            return r.json()["items"] if r.status_code == 200 else []

        [m] = await wait_for(memberships, timeout=15)
        verify = f"/api/v1/groups/members/{m['membership_id']}/verify"
        r = await http.post(verify, json={"verified": True}, headers={**SCHOOL_ADMIN, "If-Match": '"99"'})
        assert r.status_code == 412 and r.json()["version"] == m["version"], r.text
        r = await http.post(verify, json={"verified": True}, headers={**SCHOOL_ADMIN, "If-Match": f'"{m["version"]}"'})
        assert r.status_code == 200 and r.json()["verified"] is True and r.json()["version"] == m["version"] + 1
