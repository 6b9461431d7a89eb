"""Figures documents for the API, exports and dashboard (reads + pure assembly)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.reporting.domain.figures import figures, merge_scopes, series
from services.reporting.domain.paths import depth
from services.reporting.store import reads
from shared import progress
from shared.db import Conn
from shared.problems import not_found


async def summaries(conn: Conn, nodes: list[str], campaign_id: str) -> list[dict[str, Any]]:
    """The indicator document of each node for a campaign ('' = all campaigns)."""
    scopes = ["", campaign_id] if campaign_id else [""]
    metrics = await reads.list_node_metrics(conn, nodes, scopes)
    names = await reads.list_names(conn, nodes)
    items = await reads.list_checklist_items(conn, campaign_id)
    out = []
    for n in nodes:
        merged = merge_scopes(metrics.get((n, campaign_id), {}), metrics.get((n, ""), {}), campaign_id)
        name, level = names.get(n, (n.rsplit("/", 1)[-1], _level(n)))
        out.append(
            {
                "org_path": n,
                "name": name,
                "level": level,
                "campaign_id": campaign_id or None,
                "figures": figures(merged, items),
            }
        )
    return out


async def summary(conn: Conn, node: str, campaign_id: str) -> dict[str, Any]:
    """The indicator document of one node for a campaign ('' = all campaigns)."""
    return (await summaries(conn, [node], campaign_id))[0]


async def children(conn: Conn, node: str, campaign_id: str) -> dict[str, Any]:
    """The node's own figures and each child's."""
    kids = await reads.list_children(conn, node)
    docs = await summaries(conn, [node, *kids], campaign_id)
    return {"org_path": node, "campaign_id": campaign_id or None, "self": docs[0], "children": docs[1:]}


async def day_series(conn: Conn, node: str, campaign_id: str) -> dict[str, Any]:
    """Per-day counts for a node and campaign."""
    scope = campaign_id or ""
    metrics = await reads.list_node_metrics(conn, [node], [scope])
    return {"org_path": node, "campaign_id": campaign_id or None, "days": series(metrics.get((node, scope), {}))}


LEVELS = {1: "city", 2: "district", 3: "school", 4: "grade", 5: "class"}


def _level(path: str) -> str:
    return LEVELS.get(depth(path), "unit")


async def teachers_behind(pool: Conn, node: str, campaign_id: str, today: date, limit: int) -> dict[str, Any]:
    """The teachers of a campaign inside a subtree who are behind its plan by today (`shared.progress`), furthest
    behind first."""
    plan = await reads.get_campaign_plan(pool, campaign_id)
    if plan is None or plan["starts_on"] is None or plan["ends_on"] is None:
        raise not_found("campaign")
    behind = []
    for r in await reads.list_teacher_progress(pool, campaign_id, node):
        p = progress.against_plan(r["assigned"], r["completed"], plan["starts_on"], plan["ends_on"], today)
        if p.behind:
            behind.append({**dict(r), "expected": p.expected, "behind_by": p.behind_by})
    behind.sort(key=lambda t: (-t["behind_by"], t["teacher_id"]))
    return {
        "campaign_id": campaign_id,
        "org_path": node,
        "today": today,
        "starts_on": plan["starts_on"],
        "ends_on": plan["ends_on"],
        "behind": len(behind),
        "teachers": behind[:limit],
    }
