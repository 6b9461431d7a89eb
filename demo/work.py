"""The demo's "work as people do it" steps after the campaign: a follow-up contact with its review date, a leaver's
cases handed over, two people editing one family at once (one is told), the same child registered twice and merged.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from demo.client import CITY, Api
from shared.auth import issue_token


async def _until(check: Any, seconds: int = 60) -> Any:
    for _ in range(seconds * 2):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.5)
    return None


def _staff_api(url: str, staff_id: str) -> Api:
    return Api(url, issue_token(role="teacher", org_path=CITY, staff_id=staff_id, subject=f"staff-{staff_id}"))


async def follow_up(outreach: Api, outreach_url: str) -> tuple[str, str]:
    """A carer calls on the family of the newest high-risk case: the contact sets its next review date by risk."""
    cases = (await outreach.get("/cases", risk_level="high", limit=1))["items"] or (
        await outreach.get("/cases", limit=1)
    )["items"]
    case = await outreach.get(f"/cases/{cases[0]['case_id']}")
    carer = case["carers"][0]["staff_id"]
    api = _staff_api(outreach_url, carer)
    try:
        body = {"contacted_at": datetime.now(UTC).isoformat(), "mode": "in_home", "outcome": "家访，制定帮扶计划"}
        contact = await api.post(f"/cases/{case['case_id']}/contacts", body)
    finally:
        await api.close()
    line = (
        f"follow-up: carer {carer} called on a {case['risk_level']}-risk case's family; next review by "
        f"{contact['next_review_at'][:10]} (missed reviews escalate like missed first contacts)"
    )
    return case["case_id"], line


async def leaver(committees: Api, outreach: Api, outreach_url: str, case_id: str) -> str:
    """A carer of that case leaves the school: outreach hands their open cases to whoever the rules choose."""
    case = await outreach.get(f"/cases/{case_id}")
    carers = case["carers"]
    gone = next((c for c in carers if c["role"] != "class_teacher"), carers[0])["staff_id"]
    api = _staff_api(outreach_url, gone)
    try:
        theirs = len((await api.get("/cases", mine="true", limit=500))["items"])
    finally:
        await api.close()
    await committees.call("DELETE", f"/staff/{gone}", headers={"If-Match": "*"})

    async def handed() -> list[str] | None:
        now = [c["staff_id"] for c in (await outreach.get(f"/cases/{case_id}"))["carers"]]
        return now if gone not in now else None

    now = await _until(handed)
    if now is None:
        return f"leaver: {gone} left; their cases were not handed over within a minute"
    return (
        f"leaver: {gone} left the school; their {theirs} open case(s) were handed over (this one now: {', '.join(now)})"
    )


async def conflict(committees: Api) -> str:
    """Two administrators edit the same family from the same read: one is saved, the other told (412)."""
    student = (await committees.get("/students", limit=1))["items"][0]
    one = f"/families/{student['family_id']}"
    read = await committees.http.get(one)
    etag = read.headers["etag"]
    a, b = await asyncio.gather(
        committees.http.patch(one, json={"address": "东路1号"}, headers={"If-Match": etag}),
        committees.http.patch(one, json={"address": "西路2号"}, headers={"If-Match": etag}),
    )
    codes = sorted([a.status_code, b.status_code])
    lost = a if a.status_code == 412 else b
    told = lost.json().get("version") if lost.status_code == 412 else None
    return (
        f"conflict: two admins saved family {student['family_id'][:8]}… from the same read (ETag {etag}): "
        f"answers {codes} — the second was told the family is now at version {told} and overwrote nothing"
    )


async def duplicate(committees: Api, outreach: Api) -> str:
    """The same child registered again (another student number, a typo in the name); the admin merges the two."""
    for case in (await outreach.get("/cases", limit=50))["items"]:
        first = await committees.get(f"/students/{case['student_id']}")
        if len(first["name"]) >= 3:  # one of two given-name characters mistyped still reads as the same child;
            break  # in 陆强 → 陆晓 half the name differs, and the rule (rightly) sees two children
    name = first["name"]
    typo = name[:-1] + ("晓" if name[-1] != "晓" else "小")
    again = {
        "student_no": f"{first['student_no']}-2",
        "name": typo,
        "birth_date": first["birth_date"],
        "class_id": first["class_id"],
        "family_id": first["family_id"],
    }
    created = await committees.post("/students", again)
    candidates = created.get("duplicate_candidates") or []
    best = next((c for c in candidates if c["student_id"] == first["student_id"]), None)
    if best is None:
        return f"duplicates: {typo} was not reported as a likely duplicate of {name}"
    await committees.post(f"/students/{first['student_id']}/merge", {"duplicate_id": created["student_id"]})

    async def one_open_case() -> int | None:
        ids = (first["student_id"], created["student_id"])
        open_ = [
            c for sid in ids for c in (await outreach.get("/cases", student_id=sid))["items"] if c["state"] != "closed"
        ]
        return len(open_) if len(open_) <= 1 else None

    n = await _until(one_open_case)
    return (
        f"duplicates: {typo} registered again was reported as a likely duplicate of {name} (score {best['score']}: "
        f"{', '.join(best['reasons'])}); merged: one child, {n} open case"
    )


async def people_at_work(committees: Api, outreach_url: str, token: str) -> list[str]:
    """Run the steps; one line each for the summary."""
    outreach = Api(outreach_url, token)
    try:
        case_id, followed = await follow_up(outreach, outreach_url)
        return [
            followed,
            await leaver(committees, outreach, outreach_url, case_id),
            await conflict(committees),
            await duplicate(committees, outreach),
        ]
    finally:
        await outreach.close()
