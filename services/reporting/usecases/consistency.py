"""Consistency check: recompute headline figures from the owning services' APIs and compare with the read model.

`python -m services.reporting.usecases.consistency [--org-path /620400] [--campaign ID] [--token JWT]`

Owner endpoints called (the only coupling to the owners; keep this list in sync with their APIs):

* visits     GET /api/v1/campaigns/{campaign_id}/progress?by=district&org_path={path}
             -> units[].org_path, assigned, completed, teachers, by_mode.{in_home,online,phone,at_school}
             compared per district and in total with assignments, visits.completed, teachers.assigned,
             visits.by_mode (one completed visit per assignment, as the visits service records them)
* outreach   GET /api/v1/cases?org_path={path}&limit=500&cursor={c}
             -> items[].org_path, state, overdue; next_cursor
             compared with cases.opened (all), cases.open (state != closed), cases.closed, cases.overdue
* committees GET /api/v1/org-units?under={org_unit_id}&level={school|grade|class}&limit=500&cursor={c}
             -> items[], next_cursor     compared with structure.org_units.{school,grade,class}

Prints every difference; exits 1 when there is one, 2 when an owner could not be asked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.reporting.settings import ReportingSettings
from services.reporting.store import reads
from services.reporting.usecases import views
from shared import db, scope
from shared.auth import issue_token


@dataclass(frozen=True)
class Diff:
    """One figure that differs between an owner and the read model."""

    figure: str
    org_path: str
    owner: Any
    reporting: Any


@dataclass
class Report:
    """What the check compared and found."""

    compared: int = 0
    diffs: list[Diff] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)

    def add(self, figure: str, org_path: str, owner: Any, reporting: Any) -> None:
        self.compared += 1
        if owner != reporting:
            self.diffs.append(Diff(figure, org_path, owner, reporting))


async def check_visits(http: httpx.AsyncClient, rep: Report, figures: dict[str, Any], root: str, cid: str) -> None:
    """Campaign progress per district (and in total) against assignments and completed visits."""
    r = await http.get(f"/api/v1/campaigns/{cid}/progress", params={"by": "district", "org_path": root})
    r.raise_for_status()
    units = r.json()["units"]
    for u in units:
        f = figures.get(u["org_path"])
        if f is None:
            rep.add("visits.assigned", u["org_path"], u["assigned"], None)
            continue
        rep.add("assignments", u["org_path"], u["assigned"], f["assignments"])
        rep.add("visits.completed", u["org_path"], u["completed"], f["visits"]["completed"])
        rep.add("teachers.assigned", u["org_path"], u["teachers"], f["teachers"]["assigned"])
        for mode, n in u.get("by_mode", {}).items():
            rep.add(f"visits.by_mode.{mode}", u["org_path"], n, f["visits"]["by_mode"].get(mode))
    f = figures[root]
    rep.add("assignments", root, sum(u["assigned"] for u in units), f["assignments"])
    rep.add("visits.completed", root, sum(u["completed"] for u in units), f["visits"]["completed"])


async def every_item(http: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of an owner's list, page after page (the kit's `Page`: items, next_cursor)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = await http.get(path, params={**params, "limit": 500} | ({"cursor": cursor} if cursor else {}))
        r.raise_for_status()
        page = r.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def check_outreach(http: httpx.AsyncClient, rep: Report, figures: dict[str, Any], root: str) -> None:
    """Cases counted from the outreach case list against cases opened/open/closed/overdue."""
    cases = await every_item(http, "/api/v1/cases", {"org_path": root})
    for node, f in figures.items():
        mine = [c for c in cases if scope.within(c["org_path"], node)]
        states = Counter("closed" if c["state"] == "closed" else "open" for c in mine)
        rep.add("cases.opened", node, len(mine), f["cases"]["opened"])
        rep.add("cases.open", node, states["open"], f["cases"]["open"])
        rep.add("cases.closed", node, states["closed"], f["cases"]["closed"])
        rep.add("cases.overdue", node, sum(1 for c in mine if c.get("overdue")), f["cases"]["overdue"])


async def check_committees(http: httpx.AsyncClient, rep: Report, figures: dict[str, Any], root: str) -> None:
    """Org units per level in the directory against the read model's org unit counts."""
    unit_id = root.rstrip("/").rsplit("/", 1)[-1]
    for level in ("school", "grade", "class"):
        n = len(await every_item(http, "/api/v1/org-units", {"under": unit_id, "level": level}))
        rep.add(f"structure.org_units.{level}", root, n, figures[root]["structure"]["org_units"][level])


async def run_check(settings: ReportingSettings, root: str, campaign_id: str | None, token: str) -> Report:
    """Compare the read model with the owners for `root` and its children."""
    rep = Report()
    pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=2)
    try:
        if campaign_id is None:
            known = await reads.list_all_campaigns(pool)
            campaign_ids = [c["campaign_id"] for c in known]
        else:
            campaign_ids = [campaign_id]
        nodes = [root, *await reads.list_children(pool, root)]
        all_docs = {d["org_path"]: d["figures"] for d in await views.summaries(pool, nodes, "")}
        per_campaign = {
            cid: {d["org_path"]: d["figures"] for d in await views.summaries(pool, nodes, cid)} for cid in campaign_ids
        }
    finally:
        await pool.close()
    headers = {"Authorization": f"Bearer {token}"}
    owners = (
        ("visits", settings.visits_url),
        ("outreach", settings.outreach_url),
        ("committees", settings.committees_url),
    )
    for name, url in owners:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            try:
                if name == "visits":
                    for cid, figs in per_campaign.items():
                        await check_visits(http, rep, figs, root, cid)
                elif name == "outreach":
                    await check_outreach(http, rep, all_docs, root)
                else:
                    await check_committees(http, rep, all_docs, root)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                rep.unavailable.append(f"{name} ({url}): {type(exc).__name__}: {exc}")
    return rep


def print_report(rep: Report) -> int:
    """Print the differences; the process exit code."""
    for d in rep.diffs:
        print(f"DIFF {d.figure:<32} {d.org_path:<40} owner={d.owner!r:<10} reporting={d.reporting!r}")
    for u in rep.unavailable:
        print(f"UNAVAILABLE {u}")
    print(f"compared {rep.compared} figures: {len(rep.diffs)} differences, {len(rep.unavailable)} owners unavailable")
    if rep.diffs:
        return 1
    return 2 if rep.unavailable else 0


def main() -> None:
    """CLI entry point."""
    p = argparse.ArgumentParser(description="Compare reporting's read model with the owning services' APIs.")
    p.add_argument("--org-path", default="/620400")
    p.add_argument("--campaign", default=None, help="one campaign id (default: every campaign seen)")
    p.add_argument("--token", default=None, help="bearer token for the owners (default: a dev token)")
    a = p.parse_args()
    settings = ReportingSettings()
    if a.token is None and not settings.auth_dev_tokens:
        p.error("--token is required: this deployment accepts the identity provider's tokens only (no dev token)")
    token = a.token or issue_token(role=["bureau_admin", "auditor"], org_path=a.org_path, secret=settings.jwt_secret)
    sys.exit(print_report(asyncio.run(run_check(settings, a.org_path, a.campaign, token))))


if __name__ == "__main__":
    main()
