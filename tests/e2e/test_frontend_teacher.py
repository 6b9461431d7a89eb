"""The teacher's offline app (frontends/, served by the gateway at /app/) in real Chromium (Playwright with Debian's
Chromium) against the real services: a teacher signs in, records two visits online and three offline (the
browser's network switched off), reloads the page while offline (the service worker serves the app, IndexedDB
keeps the outbox), comes back online; the answer to the first upload is lost on the way back and the app sends the
batch again. All five visits are in visits exactly once, the urgent one was sent first. Chinese and English both
render; axe-core finds no serious or critical accessibility violation on any screen; screenshots of each screen
go to test-artifacts/frontend/."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from collections import Counter
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright, expect

from demo.client import CITY
from shared.auth import issue_token
from shared.devstack.gateway import Gateway
from tests.e2e.browser import CHROMIUM, axe_source, check_accessibility, shot, sign_in_as
from tests.e2e.city import CityRun
from tests.e2e.gateway import school_campaign

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

BUREAU = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path="/620400", subject="fe-admin")}
TODAY = dt.date.today()
BATCH = "**/api/v1/visits/batch"


@pytest.fixture(scope="module")
def teacher(city_gateway: Gateway, undisturbed: tuple[CityRun, dict[str, Any]]) -> dict[str, Any]:
    """A new campaign for one school, launched; the teacher of it with the most families, a dev user of the app."""
    mine = school_campaign(city_gateway, "frontend")
    city_gateway.write_dev_users(
        [{"name": "张老师 (demo)", "role": "teacher", "token": mine["token"], "staff_id": mine["teacher_id"]}]
    )
    return mine


async def record(
    page: Page, campaign_id: str, family_id: str, *, missed: bool, finding: tuple[str, str] | None = None
) -> None:
    """Fill the visit form for a family through its labels, as a teacher would, and save it."""
    card = page.locator(f"article[data-campaign='{campaign_id}']")
    await card.get_by_role("button", name=f"记录家访 · 家庭 {family_id}", exact=True).click()
    form = page.locator("form.visit-form")
    await expect(form).to_be_visible()
    if missed:
        await form.get_by_label("未能家访").check()
        await form.get_by_label("未能家访的原因").select_option("family_unavailable")
    else:
        await form.get_by_label("家访方式").select_option(index=0)
        await form.get_by_label("时长（分钟）").fill("45")
        topics = form.locator("input[name=guidance]")
        if await topics.count():
            await topics.first.check()
        if finding is not None:
            await form.locator("button", has_text="为该生添加发现").first.click()
            await form.locator("select[name=finding-0-category]").select_option(finding[0])
            await form.locator("select[name=finding-0-severity]").select_option(finding[1])
            await form.locator("input[name=finding-0-note]").fill("夜间独自在家")
    await form.get_by_role("button", name="保存（离线也可）").click()
    await expect(page.locator("form.visit-form")).to_have_count(0)
    await page.get_by_role("button", name="我的家访任务").click()


async def visits_of(run: CityRun, teacher_id: str, campaign_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(run.database("visits"), server_settings={"search_path": run.schema("visits")})
    try:
        rows = await conn.fetch(
            "SELECT v.visit_id, v.assignment_id, v.status, count(f.finding_id) AS findings FROM visits v"
            " LEFT JOIN findings f USING (visit_id) WHERE v.teacher_id = $1 AND v.campaign_id = $2"
            " GROUP BY v.visit_id",
            teacher_id,
            campaign_id,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def outbox(page: Page) -> list[dict[str, str]]:
    await page.get_by_role("button", name="待发送").click()
    items: list[dict[str, str]] = await page.eval_on_selector_all(
        "ul.outbox > li", "els => els.map(e => ({id: e.dataset.visit, status: e.dataset.status}))"
    )
    return items


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (apt-get install chromium)")
async def test_teacher_records_visits_online_and_offline_each_stored_once(
    city_gateway: Gateway, undisturbed: tuple[CityRun, dict[str, Any]], teacher: dict[str, Any]
) -> None:
    run, _ = undisturbed
    axe = axe_source()
    cid = teacher["campaign_id"]
    mine = f"article[data-campaign='{cid}'] ul.assignments > li"
    families = [a["family_id"] for a in teacher["assignments"]]
    n = len(families)
    # Five visits on the teacher's families (a missed visit may be followed by another; at most one completed each).
    plan = [families[i % n] for i in range(5)]
    sent: list[dict[str, Any]] = []
    lose_next_answer = {"armed": False, "lost": 0}

    async def batches(route: Route) -> None:
        body = json.loads(route.request.post_data or "{}")
        sent.append({"key": route.request.headers.get("idempotency-key"), "visits": body.get("visits", [])})
        response = await route.fetch()  # visits gets it and answers...
        if lose_next_answer["armed"]:
            lose_next_answer["armed"] = False
            lose_next_answer["lost"] += 1
            await route.abort("connectionreset")  # ...and the answer is lost on the way back
            return
        await route.fulfill(response=response)

    async with async_playwright() as pw:
        browser: Browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context: BrowserContext = await browser.new_context(
            viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="zh-CN"
        )
        await context.route(BATCH, batches)
        downloads: list[str] = []  # the app's reads of the campaign's assignments
        context.on("request", lambda r: downloads.append(r.url) if f"/campaigns/{cid}/assignments" in r.url else None)
        page = await context.new_page()
        app = city_gateway.address + "/app/"

        # Sign in: the dev sign-in lists the demo users; Chinese by default.
        await page.goto(app)
        await expect(page.get_by_role("heading", name="登录")).to_be_visible()
        assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        await check_accessibility(page, axe, "sign-in")
        await shot(page, "01-sign-in-zh")
        await page.get_by_role("button", name="张老师 (demo) · 教师").click()
        await expect(page.get_by_role("heading", name="我的家访任务")).to_be_visible()
        await expect(page.locator(mine)).to_have_count(n, timeout=30_000)
        await expect(page.locator(f"article[data-campaign='{cid}'] progress")).to_have_count(1)
        await check_accessibility(page, axe, "assignments")
        await shot(page, "02-assignments-zh")
        # The service worker controls the page (it has cached the app) before the network goes.
        await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
        # Installable as an app (manifest, icons, service worker): Chromium's own check finds nothing missing but
        # the test's browser context itself (Playwright's contexts are incognito, where nothing installs).
        cdp = await context.new_cdp_session(page)
        errors = (await cdp.send("Page.getInstallabilityErrors"))["installabilityErrors"]
        assert [e["errorId"] for e in errors] == ["in-incognito"], errors

        # Two visits online: each stored at once, with its receipt.
        await record(page, cid, plan[0], missed=True)
        await record(page, cid, plan[1], missed=True)
        await page.get_by_role("button", name="待发送").click()
        await expect(page.locator("ul.outbox > li[data-status=stored]")).to_have_count(2, timeout=30_000)
        await page.get_by_role("button", name="我的家访任务").click()

        # Three offline: the network is switched off in the browser.
        await context.set_offline(True)
        await expect(page.locator("[data-online=false]")).to_be_visible()
        await record(page, cid, plan[2], missed=True)
        # the urgent finding (a safety risk) is the second offline visit, recorded after a plain one
        await record(page, cid, plan[3], missed=False, finding=("safety_risk", "urgent"))
        await record(page, cid, plan[4], missed=False)
        # Meanwhile an administrator records a visit of the first offline visit's family: that assignment changes.
        changed = next(a for a in teacher["assignments"] if a["family_id"] == plan[2])
        async with httpx.AsyncClient(base_url=city_gateway.address + "/api/v1", headers=BUREAU, timeout=60) as http:
            missed = {"assignment_id": changed["assignment_id"], "status": "missed", "visited_on": TODAY.isoformat()}
            missed["miss_reason"] = "teacher_unavailable"
            key = {"Idempotency-Key": os.urandom(8).hex()}
            (await http.post("/visits", json=missed, headers=key)).raise_for_status()
        offline_form = await outbox(page)
        assert Counter(i["status"] for i in offline_form) == {"stored": 2, "queued": 3}
        await shot(page, "03-outbox-offline-zh")

        # Closed and reopened while offline: the service worker serves the app, IndexedDB still holds the queue.
        await page.close()
        page = await context.new_page()
        await page.goto(app)
        await expect(page.get_by_role("heading", name="我的家访任务")).to_be_visible()
        await expect(page.locator(mine)).to_have_count(n)
        reopened = await outbox(page)
        assert sorted(i["id"] for i in reopened) == sorted(i["id"] for i in offline_form)
        assert Counter(i["status"] for i in reopened) == {"stored": 2, "queued": 3}
        await check_accessibility(page, axe, "outbox")
        assert len(sent) == 2, "nothing is sent while the browser is offline"

        # Back online; the answer to the first upload is lost and the app sends the same batch again.
        lose_next_answer["armed"] = True
        await context.set_offline(False)
        await expect(page.locator("ul.outbox > li[data-status=stored]")).to_have_count(4, timeout=60_000)
        assert lose_next_answer["lost"] == 1
        offline_batches = sent[2:]
        assert len(offline_batches) == 2 and offline_batches[0] == offline_batches[1], "resent unchanged, same key"
        first = offline_batches[0]["visits"]
        assert len(first) == 3
        assert first[0]["findings"][0]["severity"] == "urgent", "the urgent visit goes first"

        # The visit whose assignment changed meanwhile is a conflict: both versions shown, nothing overwritten;
        # the teacher sends it again against the assignment as it is now.
        conflict = page.locator("ul.outbox > li[data-status=conflict]")
        await expect(conflict).to_have_count(1)
        assert await conflict.get_attribute("data-assignment") == changed["assignment_id"]
        await expect(conflict.locator("[data-current-status=missed]")).to_be_visible()
        await check_accessibility(page, axe, "conflict")
        await conflict.scroll_into_view_if_needed()
        await shot(page, "04-outbox-conflict-zh")
        await conflict.get_by_role("button", name="按最新版本重新提交").click()
        await expect(page.locator("ul.outbox > li[data-status=stored]")).to_have_count(5, timeout=60_000)
        await shot(page, "05-outbox-sent-zh")
        again = sent[-1]["visits"]
        assert len(sent) == 5 and [v["assignment_id"] for v in again] == [changed["assignment_id"]]
        before = next(v for v in first if v["assignment_id"] == changed["assignment_id"])
        assert again[0]["assignment_version"] > before["assignment_version"]

        # Exactly once in visits: the app's five visits (and the administrator's one), the urgent finding once.
        stored = await visits_of(run, teacher["teacher_id"], teacher["campaign_id"])
        receipts = await page.eval_on_selector_all("ul.outbox code", "els => els.map(e => e.textContent)")
        assert len(receipts) == len(set(receipts)) == 5
        assert set(receipts) <= {v["visit_id"] for v in stored} and len(stored) == 6, stored
        assert sorted(v["status"] for v in stored) == ["completed", "completed", "missed", "missed", "missed", "missed"]
        assert sum(v["findings"] for v in stored) == 1

        # The first download took every assignment; the later ones (on reconnecting) only what changed since.
        assert downloads and "changed_since=" not in downloads[0], downloads
        assert any("changed_since=" in u for u in downloads[1:]), downloads

        # English renders too, and the visit form passes the accessibility check in both languages.
        await page.get_by_role("button", name="English").click()
        assert await page.evaluate("document.documentElement.lang") == "en"
        await expect(page.get_by_role("heading", name="Visits waiting to be sent")).to_be_visible()
        await shot(page, "06-outbox-en")
        await page.get_by_role("button", name="My visits").click()
        await check_accessibility(page, axe, "assignments-en")
        await shot(page, "07-assignments-en")
        await page.get_by_role("button", name="中文").click()
        await (
            page.locator(f"article[data-campaign='{cid}']")
            .get_by_role("button", name=f"记录家访 · 家庭 {plan[0]}", exact=True)
            .click()
        )
        await check_accessibility(page, axe, "visit-form")
        await shot(page, "08-visit-form-zh")
        await browser.close()


async def until_found(http: httpx.AsyncClient, path: str, params: dict[str, Any], match: Any) -> dict[str, Any]:
    """The first item of a list route that `match` accepts, once outreach has reacted (Kafka in between)."""
    for _ in range(240):
        data = (await http.get(path, params=params)).raise_for_status().json()
        found = [x for x in (data["items"] if isinstance(data, dict) else data) if match(x)]
        if found:
            return dict(found[0])
        await asyncio.sleep(0.5)
    raise AssertionError(f"nothing in {path} {params}")


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (apt-get install chromium)")
async def test_the_urgent_finding_goes_to_the_carer_the_school_and_the_department(
    city_gateway: Gateway, undisturbed: tuple[CityRun, dict[str, Any]], teacher: dict[str, Any]
) -> None:
    """After the teacher's test: the urgent safety-risk finding opened a case in outreach. Its carer sees it, logs a
    contact and proposes closure; the school admin approves the closure; civil affairs acknowledges its referral —
    each in the app, each checked through the API and with axe-core."""
    run, _ = undisturbed
    axe = axe_source()
    stored = await visits_of(run, teacher["teacher_id"], teacher["campaign_id"])
    assert sum(v["findings"] for v in stored) == 1, "runs after the teacher's test"
    async with httpx.AsyncClient(base_url=city_gateway.address + "/api/v1", headers=BUREAU, timeout=60) as http:
        case = await until_found(
            http, "/cases", {"org_path": teacher["school"]}, lambda c: "safety_risk" in c["categories"]
        )
        detail = (await http.get(f"/cases/{case['case_id']}")).raise_for_status().json()
        carer_id = detail["carers"][0]["staff_id"]
        carer = (await http.get(f"/staff/{carer_id}")).raise_for_status().json()
        referral = await until_found(
            http,
            "/referrals",
            {"org_path": teacher["school"]},
            lambda r: r["case_id"] == case["case_id"] and r["department"] == "civil_affairs",
        )
    carer_token = issue_token(
        role="teacher", org_path=carer["org_path"], staff_id=carer_id, subject=f"fe-carer-{carer_id}"
    )
    admin_token = issue_token(role="school_admin", org_path=teacher["school"], subject="fe-school-admin")
    partner_token = issue_token(
        role="department_partner", org_path=CITY, department="civil_affairs", subject="fe-civil-affairs"
    )
    city_gateway.write_dev_users(
        [
            {"name": "李老师 (carer)", "role": "teacher", "token": carer_token},
            {"name": "王校长 (school)", "role": "school_admin", "token": admin_token},
            {"name": "民政局 (civil affairs)", "role": "department_partner", "token": partner_token},
        ]
    )
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
        page = await context.new_page()
        app = city_gateway.address + "/app/"

        # The carer: the case in "my cases" (overdue first, then by due date); log a contact; propose closure.
        await sign_in_as(page, app, "李老师 (carer) · 教师")
        await page.get_by_role("button", name="我负责的个案").click()
        item = page.locator(f"li[data-case='{case['case_id']}']")
        await expect(item).to_be_visible(timeout=30_000)
        await check_accessibility(page, axe, "carer-cases")
        await shot(page, "10-carer-cases-zh")
        await item.get_by_role("button").click()
        await expect(page.get_by_role("heading", name="个案记录")).to_be_visible()
        await page.get_by_label("约定事项（不写姓名和联系方式）").fill("已与监护人通话，约定每周回访")
        await page.get_by_role("button", name="记录一次联系").last.click()
        await expect(page.locator("p[role=status]")).to_have_text("已提交。")
        await page.get_by_role("button", name="申请结案").last.click()
        await expect(page.get_by_text("结案申请待审批")).to_be_visible()
        await check_accessibility(page, axe, "carer-case")
        await shot(page, "11-carer-case-zh")

        # The school admin approves the closure.
        await sign_in_as(page, app, "王校长 (school) · 学校管理员")
        await page.get_by_role("button", name="结案审批").click()
        pending = page.locator(f"li[data-case='{case['case_id']}']")
        await expect(pending).to_be_visible(timeout=30_000)
        await check_accessibility(page, axe, "admin-closures")
        await shot(page, "12-admin-closures-zh")
        await pending.get_by_role("button", name="批准结案").click()
        await expect(pending).to_have_count(0)

        # Civil affairs acknowledges its referral (the child's minimal details only).
        await sign_in_as(page, app, "民政局 (civil affairs) · 部门合作方")
        listed = page.locator(f"ul.outbox li[data-referral='{referral['referral_id']}']")
        await expect(listed).to_be_visible(timeout=30_000)
        await listed.get_by_role("button").click()
        await page.get_by_role("button", name="确认收到").click()
        await expect(page.locator(f"div[data-referral='{referral['referral_id']}']")).to_have_attribute(
            "data-state", "acknowledged"
        )
        await check_accessibility(page, axe, "department-inbox")
        await shot(page, "13-department-inbox-zh")
        await page.get_by_role("button", name="English").click()
        await shot(page, "14-department-inbox-en")
        await browser.close()

    async with httpx.AsyncClient(base_url=city_gateway.address + "/api/v1", headers=BUREAU, timeout=60) as http:
        after = (await http.get(f"/cases/{case['case_id']}")).raise_for_status().json()
        answered = (await http.get(f"/referrals/{referral['referral_id']}")).raise_for_status().json()
    assert after["state"] == "closed" and after["contacts"], after["state"]
    assert answered["state"] == "acknowledged"
