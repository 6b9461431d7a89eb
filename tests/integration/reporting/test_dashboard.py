"""The dashboard in headless Chromium shows the API's figures for the same scope, and drill-down works."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.contracts.common import Category, OrgLevel
from tests.integration.reporting import scenario
from tests.integration.reporting.cdp import CHROMIUM, browser
from tests.integration.reporting.expected import pick

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def shown_value(raw: str):
    return None if raw == "" else float(raw)


async def assert_page_matches_api(page, reporting, node: str) -> None:
    shown = await page.js(
        "[...document.querySelectorAll('[data-figure]')].map(e => [e.dataset.figure, e.dataset.value])"
    )
    assert len(shown) == 14  # every headline card, the closures awaiting approval and the flagged visits included
    api = (await reporting.summary(node, scenario.CAMPAIGN))["figures"]
    for name, raw in shown:
        want = pick(api, name)
        assert shown_value(raw) == (None if want is None else float(want)), name
    rows = await page.js("[...document.querySelectorAll('#drill tbody tr[data-path]')].map(r => r.dataset.path)")
    kids = (await reporting.get("/api/v1/children", org_path=node, campaign_id=scenario.CAMPAIGN)).json()["children"]
    assert rows == [k["org_path"] for k in kids]
    behind = await page.js(
        "[...document.querySelectorAll('#behind tbody tr[data-teacher]')].map(r => r.dataset.teacher)"
    )
    api_behind = await reporting.get("/api/v1/reporting/teachers-behind", org_path=node, campaign_id=scenario.CAMPAIGN)
    assert behind == [x["teacher_id"] for x in api_behind.json()["teachers"]]
    if node == scenario.CITY:
        assert behind == ["t2"]  # the teachers-behind table a school or bureau admin sees


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (apt-get install chromium)")
async def test_dashboard_shows_api_figures_and_drills_down(reporting):
    messages = scenario.envelopes(scenario.all_events())
    await scenario.publish(reporting.settings, messages)
    await reporting.converge(messages)

    async with browser() as page:
        # A token in the URL is never used (URLs end up in history and logs): the page asks to sign in.
        await page.goto(f"{reporting.url}/dashboard?token={reporting.token}")
        await page.wait("document.body.dataset.state === 'login'")
        assert await page.js("sessionStorage.getItem('hss.token')") is None
        await page.goto(f"{reporting.url}/dashboard")
        await page.wait("document.body.dataset.state === 'login'")
        await page.js(f"document.getElementById('token-input').value = {reporting.token!r}")
        await page.js("document.getElementById('login-btn').click()")
        await page.wait("document.body.dataset.state === 'ready'")
        assert await page.js("document.body.dataset.node") == scenario.CITY
        await assert_page_matches_api(page, reporting, scenario.CITY)
        assert await page.js("document.querySelectorAll('#chart-coverage rect[data-bar]').length") == 2
        text = await page.js("document.body.innerText")
        assert "家访覆盖率" in text
        # Category and level labels are the contracts' own (served as /dashboard/vocabulary.json).
        assert Category.SAFETY_RISK.zh in text and OrgLevel.DISTRICT.zh in text
        await page.screenshot(ARTIFACTS / "reporting-dashboard-city-zh.png")

        # Drill down: city → district → school, by clicking table rows.
        await page.js(f"document.querySelector('#drill tr[data-path=\"{scenario.D1}\"]').click()")
        await page.wait(f"document.body.dataset.state === 'ready' && document.body.dataset.node === '{scenario.D1}'")
        await assert_page_matches_api(page, reporting, scenario.D1)
        await page.js(f"document.querySelector('#drill tr[data-path=\"{scenario.S1}\"]').click()")
        await page.wait(f"document.body.dataset.state === 'ready' && document.body.dataset.node === '{scenario.S1}'")
        await assert_page_matches_api(page, reporting, scenario.S1)

        # Back to the city through the breadcrumb, then switch the labels to English.
        await page.js(f"document.querySelector('#crumbs a[data-crumb=\"{scenario.CITY}\"]').click()")
        await page.wait(f"document.body.dataset.state === 'ready' && document.body.dataset.node === '{scenario.CITY}'")
        await page.js("document.getElementById('lang').click()")
        text = await page.js("document.body.innerText")
        assert "Visit coverage by unit" in text and "Overdue cases" in text
        assert Category.SAFETY_RISK.en in text and OrgLevel.DISTRICT.en in text
        await assert_page_matches_api(page, reporting, scenario.CITY)
        await page.screenshot(ARTIFACTS / "reporting-dashboard-city-en.png")
