"""Production sign-in in real Chromium: the app (frontends/src/oidc.ts, oauth4webapi) sends the teacher to the local
OpenID Connect provider (frontends/idp/, oidc-provider), who signs in through its login form; the app gets the code,
exchanges it with its PKCE verifier, and calls the services through the gateway with the provider's ES256 access
token, which the services verify with the provider's JWKS. The teacher records a visit with it; visits holds it under
the teacher's staff id. A wrong password is refused by the form; a token whose signature is not the provider's is
refused by the services."""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Request, async_playwright, expect

from shared.devstack.gateway import Gateway
from shared.devstack.idp import Account, IdentityProvider
from tests.e2e.browser import CHROMIUM, axe_source, check_accessibility, shot
from tests.e2e.city import CityRun
from tests.e2e.gateway import school_campaign
from tests.e2e.test_frontend_teacher import record, visits_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def _part(token: str, i: int) -> dict[str, Any]:
    raw = token.split(".")[i]
    return dict(json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))))


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed (apt-get install chromium)")
async def test_teacher_signs_in_with_the_identity_provider_and_records_a_visit(
    city_gateway: Gateway, idp: IdentityProvider, undisturbed: tuple[CityRun, dict[str, Any]]
) -> None:
    run, _ = undisturbed
    axe = axe_source()
    mine = school_campaign(city_gateway, "oidc")
    claims = _part(mine["token"], 1)
    password = secrets.token_urlsafe(12)
    idp.write_users(
        [Account("li.oidc", password, "李老师 (OIDC)", ("teacher",), claims["org_path"], staff_id=mine["teacher_id"])]
    )
    cid, family = mine["campaign_id"], mine["assignments"][0]["family_id"]
    calls: list[Request] = []

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, locale="zh-CN")
        context.on("request", lambda r: calls.append(r))
        page = await context.new_page()
        app = city_gateway.address + "/app/"
        await page.goto(app)
        await page.get_by_role("button", name="通过统一身份认证登录").click()

        # The provider's login form (another origin): a wrong password is refused there.
        await expect(page.get_by_role("heading", name="统一身份认证 · Sign in")).to_be_visible(timeout=30_000)
        assert page.url.startswith(idp.address + "/interaction/")
        await check_accessibility(page, axe, "idp-login")
        await page.get_by_label("用户名 · Username").fill("li.oidc")
        await page.get_by_label("密码 · Password").fill("not-" + password)
        await page.get_by_role("button", name="登录 · Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
        await page.get_by_label("用户名 · Username").fill("li.oidc")
        await page.get_by_label("密码 · Password").fill(password)
        await shot(page, "30-idp-login")
        await page.get_by_role("button", name="登录 · Sign in").click()

        # Back in the app, signed in as the provider's user; the code is gone from the address bar.
        await expect(page.get_by_text("当前用户: 李老师 (OIDC) (教师)")).to_be_visible(timeout=30_000)
        assert page.url == app
        card = page.locator(f"article[data-campaign='{cid}']")
        await expect(card).to_be_visible(timeout=30_000)
        await check_accessibility(page, axe, "oidc-assignments")
        await shot(page, "31-oidc-signed-in")
        await record(page, cid, family, missed=False)
        await page.get_by_role("button", name="待发送").click()
        await expect(page.locator("ul.outbox > li[data-status=stored]")).to_have_count(1, timeout=60_000)
        session = json.loads(await page.evaluate("localStorage.getItem('hss.session')"))
        await browser.close()

    # Authorization code + PKCE (S256): the challenge went to the provider, the verifier with the code to its token
    # endpoint; the API calls carried the provider's access token, never a dev token, never in a URL.
    authorize = next(r for r in calls if r.url.startswith(idp.address + "/auth?"))
    query = parse_qs(urlsplit(authorize.url).query)
    assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
    exchange = next(r for r in calls if r.url == idp.address + "/token" and r.method == "POST")
    form = parse_qs(exchange.post_data or "")
    assert form["grant_type"] == ["authorization_code"] and len(form["code_verifier"][0]) >= 43
    assert "client_secret" not in form
    token = session["token"]
    header, access = _part(token, 0), _part(token, 1)
    assert header["alg"] == "ES256" and header["kid"]
    assert access["iss"] == idp.address and access["aud"] == "hss-platform"
    assert access["roles"] == ["teacher"] and access["staff_id"] == mine["teacher_id"]
    api = [r for r in calls if "/api/v1/" in r.url]
    assert api and all(r.headers.get("authorization") == f"Bearer {token}" for r in api if r.method != "OPTIONS")
    assert not any(token in r.url for r in calls)

    stored = await visits_of(run, mine["teacher_id"], cid)
    assert [v["status"] for v in stored] == ["completed"], "the visit, once, under the teacher's staff id"

    # The services verify the provider's signature with its JWKS: the same claims under another signature are 401.
    forged = token.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(os.urandom(64)).rstrip(b"=").decode()
    async with httpx.AsyncClient(base_url=city_gateway.address + "/api/v1", timeout=30) as http:
        me = await http.get("/me/assignments", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        refused = await http.get("/me/assignments", headers={"Authorization": f"Bearer {forged}"})
        assert refused.status_code == 401
