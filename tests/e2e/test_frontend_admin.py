"""The school admin's console (frontends/src/admin/) in real Chromium against the real services through the
gateway: a campaign's progress by teacher and by class, the teachers behind schedule (reporting), reassigning a
family — where a colleague's change in between is a 412 shown as a conflict and nothing is overwritten —, the
school's parent committee with its members and its parent school's attendance; every list paged through to its
last page (the test shrinks every page to two items); zh and en; axe-core on each screen; screenshots."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from playwright.async_api import Request, Route, async_playwright, expect

from shared import progress
from shared.auth import issue_token
from shared.devstack.gateway import Gateway
from tests.e2e.browser import CHROMIUM, axe_source, check_accessibility, shot, sign_in_as
from tests.e2e.city import CityRun

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

BUREAU = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path="/620400", subject="fe-admin")}
TODAY = dt.date.today()


def key() -> dict[str, str]:
    return {"Idempotency-Key": os.urandom(8).hex()}


def every(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list, through the API."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = http.get(path, params={**params, **({"cursor": cursor} if cursor else {})}).raise_for_status().json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def all_behind(assignments: list[dict[str, Any]], answer: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The teachers behind (id, assigned, behind by) that reporting shows once it has every assignment of the launch
    (none visited yet), by the kit's rule (`shared.progress`): comparing against this, the test waits until reporting
    caught up."""
    assigned = Counter(a["teacher_id"] for a in assignments)
    starts, ends, today = (dt.date.fromisoformat(answer[k]) for k in ("starts_on", "ends_on", "today"))
    plans = {t: progress.against_plan(n, 0, starts, ends, today) for t, n in assigned.items()}
    return sorted(((t, assigned[t], p.behind_by) for t, p in plans.items() if p.behind), key=lambda t: (-t[2], t[0]))


def shown_behind(answer: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(t["teacher_id"], t["assigned"], t["behind_by"]) for t in answer["teachers"]]


@pytest.fixture(scope="module")
def school(city_gateway: Gateway, undisturbed: tuple[CityRun, dict[str, Any]]) -> dict[str, Any]:
    """The second school: a campaign launched 20 days into its 25 (so teachers are behind), a chair on the school's
    parent committee, and a school parent school with one held session (two guardians enrolled, one attended)."""
    with httpx.Client(base_url=city_gateway.address + "/api/v1", headers=BUREAU, timeout=120) as http:
        unit = http.get("/org-units", params={"level": "school", "limit": 2}).raise_for_status().json()["items"][1]
        body = {
            "name": "前端学校管理 console",
            "org_path": unit["org_path"],
            "starts_on": (TODAY - dt.timedelta(days=20)).isoformat(),
            "ends_on": (TODAY + dt.timedelta(days=5)).isoformat(),
        }
        campaign_id = http.post("/campaigns", json=body, headers=key()).raise_for_status().json()["campaign_id"]
        http.post(f"/campaigns/{campaign_id}/launch", headers=key()).raise_for_status()
        assignments = every(http, f"/campaigns/{campaign_id}/assignments", limit=1000)
        families = sorted({a["family_id"] for a in assignments})[:2]
        guardians = [http.get(f"/families/{f}").raise_for_status().json()["guardians"][0] for f in families]
        guardians = [g["guardian_id"] for g in guardians]
        committee = next(
            c for c in every(http, "/committees", under=unit["org_unit_id"]) if c["org_unit_id"] == unit["org_unit_id"]
        )
        member = {"guardian_id": guardians[0], "role": "chair", "term_start": TODAY.isoformat()}
        http.post(f"/committees/{committee['committee_id']}/members", json=member, headers=key()).raise_for_status()
        ps_body = {"org_unit_id": unit["org_unit_id"], "kind": "school", "name": "前端测试家长学校"}
        ps = http.post("/parent-schools", json=ps_body, headers=key()).raise_for_status().json()
        session_body = {"topic": "亲子沟通", "held_on": (TODAY - dt.timedelta(days=3)).isoformat(), "mode": "in_person"}
        base = f"/parent-schools/{ps['parent_school_id']}/sessions"
        session = http.post(base, json=session_body, headers=key()).raise_for_status().json()
        base += f"/{session['session_id']}"
        http.post(f"{base}/enrolments", json={"guardian_ids": guardians}, headers=key()).raise_for_status()
        records = [{"guardian_id": guardians[0], "attended": True}, {"guardian_id": guardians[1], "attended": False}]
        http.post(f"{base}/attendance", json={"records": records}, headers=key()).raise_for_status()
        http.post(f"{base}/held", json={}, headers=key()).raise_for_status()
        for _ in range(240):  # reporting learns of the launch from Kafka, assignment by assignment
            behind = http.get("/reporting/teachers-behind", params={"campaign_id": campaign_id, "limit": 1000})
            if behind.status_code == 200 and shown_behind(behind.json()) == all_behind(assignments, behind.json()):
                break
            time.sleep(0.5)
        behind.raise_for_status()
    return {
        "unit": unit,
        "campaign_id": campaign_id,
        "assignments": assignments,
        "committee_id": committee["committee_id"],
        "guardians": guardians,
        "parent_school_id": ps["parent_school_id"],
        "session_id": session["session_id"],
        "behind": behind.json(),
    }


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (apt-get install chromium)")
async def test_school_admin_console(city_gateway: Gateway, school: dict[str, Any]) -> None:
    axe = axe_source()
    cid = school["campaign_id"]
    path = school["unit"]["org_path"]
    token = issue_token(role="school_admin", org_path=path, subject="fe-console-admin")
    city_gateway.write_dev_users([{"name": "赵校长 (console)", "role": "school_admin", "token": token}])
    admin = {"Authorization": f"Bearer {token}"}
    api = httpx.AsyncClient(base_url=city_gateway.address + "/api/v1", headers=admin, timeout=60)
    progress = (await api.get(f"/campaigns/{cid}/progress", params={"by": "teacher"})).raise_for_status().json()
    by_class = (await api.get(f"/campaigns/{cid}/progress", params={"by": "class"})).raise_for_status().json()
    committees = [c async for c in _every(api, "/committees")]  # the caller's subtree
    teachers = [s async for s in _every(api, "/staff")]
    assert len(committees) > 2 and len(teachers) > 2, "more than one page of two of each"
    report_query = {"org_path": path, "campaign_id": cid}
    report = (await api.get("/children", params=report_query)).raise_for_status().json()
    assert report["children"], "the school's classes"

    followed: list[str] = []

    async def two_per_page(route: Route, request: Request) -> None:
        """Every list page shrunk to two items: the console must follow next_cursor to the last page."""
        parts = urlsplit(request.url)
        query = dict(parse_qsl(parts.query))
        if request.method == "GET" and "limit" in query and not parts.path.endswith("/teachers-behind"):  # top N
            query["limit"] = "2"
            if "cursor" in query:
                followed.append(parts.path)
            await route.continue_(url=urlunsplit(parts._replace(query=urlencode(query))))
            return
        await route.continue_()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
        await context.route("**/api/v1/**", two_per_page)
        page = await context.new_page()
        await sign_in_as(page, city_gateway.address + "/app/", "赵校长 (console) · 学校管理员")

        # Progress by teacher, then by class: one row per unit, the campaign's totals.
        await expect(page.get_by_role("heading", name="家访进度")).to_be_visible(timeout=30_000)
        await page.get_by_label("家访活动").select_option(cid)
        rows = page.locator("table tbody tr")
        await expect(rows).to_have_count(len(progress["units"]), timeout=30_000)
        totals = page.locator("p.totals")
        await expect(totals).to_have_attribute("data-assigned", str(len(school["assignments"])))
        assert await page.locator("tr[data-behind=true]").count() == sum(u["behind"] for u in progress["units"])
        await check_accessibility(page, axe, "console-progress")
        await shot(page, "20-admin-progress-zh")
        await page.get_by_label("统计方式").select_option("class")
        await expect(page.get_by_role("table", name="各班级家访进度")).to_be_visible()
        await expect(rows).to_have_count(len(by_class["units"]))

        # Teachers behind (reporting), furthest behind first; reassign one of the first one's families.
        await page.get_by_role("button", name="进度落后的教师").click()
        cards = page.locator("li[data-teacher]")
        await expect(cards).to_have_count(len(school["behind"]["teachers"]), timeout=30_000)
        await check_accessibility(page, axe, "console-behind")
        await shot(page, "21-admin-behind-zh")
        late = school["behind"]["teachers"][0]["teacher_id"]
        await page.locator(f"li[data-teacher='{late}']").get_by_role("button").click()
        await expect(page.get_by_role("heading", name="改派家庭")).to_be_visible()
        open_ones = [a for a in school["assignments"] if a["teacher_id"] == late and a["status"] == "assigned"]
        families = page.locator("ul.assignments > li")
        await expect(families).to_have_count(len(open_ones), timeout=30_000)
        target = open_ones[0]
        other = next(a["teacher_id"] for a in school["assignments"] if a["teacher_id"] != late)
        row = page.locator(f"li[data-assignment='{target['assignment_id']}']")
        await row.locator("select").select_option(other)

        # Meanwhile the teacher plans the visit: the assignment's version moves on. The admin's reassignment
        # (If-Match: the version the console read) is refused with 412 and shown as a conflict; nothing changes.
        planned = {"planned_on": (TODAY + dt.timedelta(days=1)).isoformat(), "mode": "in_home"}
        moved = await api.post(f"/assignments/{target['assignment_id']}/schedule", json=planned, headers=key())
        moved.raise_for_status()
        await row.get_by_role("button", name=f"改派 · 家庭 {target['family_id']}").click()
        alert = page.locator(f"[role=alert][data-conflict='{target['assignment_id']}']")
        await expect(alert).to_be_visible()
        await expect(alert).to_contain_text(f"版本 {target['version']}")
        await check_accessibility(page, axe, "console-reassign-conflict")
        await shot(page, "22-admin-reassign-conflict-zh")
        now = await _assignment(api, cid, target["assignment_id"])
        assert now["teacher_id"] == late and now["version"] > target["version"], "the 412 changed nothing"
        # The list now shows the current version; reassigning again against it succeeds.
        await expect(row).to_have_attribute("data-version", str(now["version"]))
        await row.locator("select").select_option(other)
        await row.get_by_role("button", name=f"改派 · 家庭 {target['family_id']}").click()
        await expect(page.get_by_text(f"家庭 {target['family_id']} 已改派给")).to_be_visible()
        await expect(row).to_have_count(0)
        assert (await _assignment(api, cid, target["assignment_id"]))["teacher_id"] == other

        # Parent committees: every committee under the school (paged), the school committee's members.
        await page.get_by_role("button", name="家长委员会").click()
        await expect(page.locator("li[data-committee]")).to_have_count(len(committees), timeout=30_000)
        mine = page.locator(f"li[data-committee='{school['committee_id']}']")
        await mine.get_by_role("button", name=f"委员名单 · {path}").click()
        await expect(mine.locator(f"tr[data-guardian='{school['guardians'][0]}']")).to_contain_text("主任")
        await check_accessibility(page, axe, "console-committees")
        await shot(page, "23-admin-committees-zh")

        # Parent schools: the session's enrolment and attendance, the guardians' completion.
        await page.get_by_role("button", name="家长学校").click()
        ps = page.locator(f"li[data-parent-school='{school['parent_school_id']}']")
        await ps.get_by_role("button").click()
        session = ps.locator(f"tr[data-session='{school['session_id']}']")
        await expect(session).to_have_attribute("data-attended", "1", timeout=30_000)
        await expect(session).to_contain_text("50%")
        await expect(ps.locator("p.completion")).to_have_attribute("data-guardians", "2")
        await check_accessibility(page, axe, "console-parent-schools")
        await shot(page, "24-admin-parent-schools-zh")

        # Reporting's dashboard in the app, same sign-in: the school's figures, its classes, a drill-down.
        await page.get_by_role("button", name="统计报表").click()
        await page.get_by_label("家访活动").select_option(cid)
        figures = page.locator(f"dl.figures[data-org='{path}']")
        await expect(figures).to_have_attribute("data-completed", str(report["self"]["figures"]["visits"]["completed"]))
        units = page.locator("table tbody tr[data-unit]")
        await expect(units).to_have_count(len(report["children"]))
        await check_accessibility(page, axe, "console-dashboard")
        await shot(page, "26-admin-dashboard-zh")
        first_unit = report["children"][0]
        await units.first.get_by_role("button", name=first_unit["name"]).click()
        await expect(page.locator(f"dl.figures[data-org='{first_unit['org_path']}']")).to_be_visible()
        await expect(page.locator("nav.trail [aria-current=page]")).to_have_text(first_unit["name"])
        await page.locator("nav.trail button").first.click()
        await expect(figures).to_be_visible()

        await page.get_by_role("button", name="家长学校").click()
        await ps.get_by_role("button").click()
        await page.get_by_role("button", name="English").click()
        await expect(page.get_by_role("heading", name="Parent schools")).to_be_visible()
        await expect(session).to_contain_text("In person")
        await check_accessibility(page, axe, "console-parent-schools-en")
        await shot(page, "25-admin-parent-schools-en")
        await browser.close()
    await api.aclose()

    # The console followed the cursors of the lists that had more than one page of two.
    assert {"/api/v1/staff", "/api/v1/committees"} <= set(followed), followed


async def _every(api: httpx.AsyncClient, path: str, **params: Any) -> Any:
    cursor = None
    while True:
        query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(path, params=query)).raise_for_status().json()
        for item in page["items"]:
            yield item
        cursor = page["next_cursor"]
        if not cursor:
            return


async def _assignment(api: httpx.AsyncClient, campaign_id: str, assignment_id: str) -> dict[str, Any]:
    async for a in _every(api, f"/campaigns/{campaign_id}/assignments"):
        if a["assignment_id"] == assignment_id:
            return dict(a)
    raise AssertionError(assignment_id)
