"""What the frontends' browser tests share: the system Chromium, axe-core from the frontend's pinned packages,
screenshots under test-artifacts/frontend/, the dev sign-in."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "frontend"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def axe_source() -> str:
    deps = subprocess.run(
        ["bash", str(ROOT / "scripts" / "frontend.sh"), "deps"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return (Path(deps) / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


async def check_accessibility(page: Page, axe: str, screen: str) -> None:
    """axe-core's WCAG 2 A/AA rules on the screen as it is: no serious or critical violation."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(content=axe)
    result = await page.evaluate(
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']})"
    )
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{screen}: {bad}"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))  # what a phone's screen shows


async def sign_in_as(page: Page, app: str, name: str) -> None:
    await page.goto(app)
    if await page.get_by_role("button", name="退出登录").count():
        await page.get_by_role("button", name="退出登录").click()
    await page.get_by_role("button", name=name).click()
