"""Reads of the materialised figures: index lookups of stored nodes, or of the few leaves under a grade or class."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import asyncpg

from services.reporting.domain.figures import HOUR_METRICS, Metrics, hour_percentiles
from services.reporting.domain.paths import depth
from services.reporting.store.refresh import (
    CAMPAIGN_PART_METRICS,
    CAMPAIGN_TABLES,
    STORED_DEPTH,
    SUBTREE_SQL,
    campaign_sql,
)
from shared.db import Conn, Params, fetch_page
from shared.scope import args as subtree_args
from shared.scope import sql as subtree_sql

# A grade or class: its leaf rows (SUBTREE_SQL) and its campaign facts' figures (refresh.CAMPAIGN_PARTS) summed per
# node, as of the last refresh, like the stored nodes' figures: the facts in [$4, $5) (the range that holds every
# node's subtree) minus their changes not yet folded (the change-log rows still there, with their signs). Each table
# is read once (the figures read a fact table up to four times).
_RANGE = "t.org_path >= $4 AND t.org_path < $5"
SUMMED_WITH = "WITH " + ", ".join(
    [f"f_{t} AS MATERIALIZED (SELECT t.*, 1 AS sg FROM {t} t WHERE {_RANGE})" for t in CAMPAIGN_TABLES]
    + [f"u_{t} AS MATERIALIZED (SELECT * FROM {t}_log t WHERE {_RANGE})" for t in CAMPAIGN_TABLES]
)
SUMMED_SQL = f"""
  {SUBTREE_SQL.replace("{nodes}", "$3").replace("{scope}", "AND scope = ANY($2::text[])")}
  UNION ALL
  SELECT p.node, c.scope, c.metric, c.dim, sum(c.v)
  FROM (SELECT * FROM ({campaign_sql({t: f"f_{t}" for t in CAMPAIGN_TABLES}, all_campaigns=True)}) f
        UNION ALL SELECT scope, leaf, metric, dim, -v
        FROM ({campaign_sql({t: f"u_{t}" for t in CAMPAIGN_TABLES}, all_campaigns=True)}) u) c
  JOIN unnest($3::text[]) p(node) ON c.leaf = p.node OR (c.leaf >= p.node || '/' AND c.leaf < p.node || '0')
  WHERE c.scope = ANY($2::text[])
  GROUP BY 1, 2, 3, 4 HAVING sum(c.v) <> 0
"""
# A stored node's rows; the campaign facts' all-campaigns figures ({parts}: CAMPAIGN_PART_METRICS) are the sums of
# its campaigns' rows (store/refresh.py stores them per campaign only).
STORED_SQL = """
SELECT node, scope, metric, dim, value FROM node_metrics WHERE node = ANY($1::text[]) AND scope = ANY($2)
UNION ALL
SELECT node, '', metric, dim, sum(value) FROM node_metrics
  WHERE node = ANY($1::text[]) AND '' = ANY($2) AND scope <> '' AND metric = ANY({parts}::text[])
  GROUP BY 1, 3, 4 HAVING sum(value) <> 0
"""
# The figure rows r: a row each, but a percentile measure's slots (up to ~900 a decade of hours at a node) as one row of
# two arrays ({h}: the parameter holding HOUR_METRICS).
BY_ROW_AND_SLOTS = """
SELECT node, scope, metric, dim, value, NULL::float8[] AS slots, NULL::float8[] AS counts FROM r
  WHERE metric <> ALL({h}::text[])
UNION ALL
SELECT node, scope, metric, '', 0, array_agg(dim::float8), array_agg(value::float8) FROM r
  WHERE metric = ANY({h}::text[]) GROUP BY 1, 2, 3
"""


async def list_node_metrics(conn: Conn, nodes: list[str], scopes: list[str]) -> dict[tuple[str, str], Metrics]:
    """(node, scope) -> {(metric, dim): value} for the given nodes; a percentile measure's slots come back as its
    median and p90 in hours, (metric, 'median') and (metric, 'p90').

    Stored nodes and summed ones (grades, classes) are read in one statement: the figures of a school and of its
    grades in one drill-down come from the same refresh.
    """
    stored = [n for n in nodes if depth(n) <= STORED_DEPTH]
    deep = sorted(n for n in nodes if depth(n) > STORED_DEPTH)
    if deep:
        sql = (
            f"{SUMMED_WITH}, r AS ({STORED_SQL.format(parts='$7')} UNION ALL {SUMMED_SQL})"
            f" {BY_ROW_AND_SLOTS.format(h='$6')}"
        )
        rows = await conn.fetch(sql, stored, scopes, deep, deep[0], deep[-1] + "0", HOUR_METRICS, CAMPAIGN_PART_METRICS)
    else:
        sql = f"WITH r AS ({STORED_SQL.format(parts='$4')}) {BY_ROW_AND_SLOTS.format(h='$3')}"
        rows = await conn.fetch(sql, stored, scopes, HOUR_METRICS, CAMPAIGN_PART_METRICS)
    out: dict[tuple[str, str], Metrics] = {}
    for r in rows:
        m = out.setdefault((r["node"], r["scope"]), {})
        if r["slots"] is None:
            m[(r["metric"], r["dim"])] = float(r["value"])
            continue
        slots: dict[float, float] = {}
        for hours, n in zip(r["slots"], r["counts"], strict=True):
            slots[hours] = slots.get(hours, 0) + n
        m.update({(r["metric"], q): v for q, v in hour_percentiles(slots).items() if v is not None})
    return out


async def list_children(conn: Conn, node: str) -> list[str]:
    """The child nodes that have any figure."""
    if depth(node) < STORED_DEPTH:
        rows = await conn.fetch("SELECT DISTINCT node FROM node_metrics WHERE parent = $1 ORDER BY node", node)
    else:  # from the leaves under it: the first path segment below the node
        rows = await conn.fetch(
            "SELECT DISTINCT $1 || '/' || split_part(substr(leaf, length($1) + 2), '/', 1) AS node FROM leaf_metrics"
            " WHERE leaf >= $1 || '/' AND leaf < $1 || '0' AND scope = '' ORDER BY 1",
            node,
        )
    return [r["node"] for r in rows]


async def list_names(conn: Conn, paths: list[str]) -> dict[str, tuple[str, str]]:
    """org_path -> (name, level) from the directory."""
    rows = await conn.fetch("SELECT org_path, name, level FROM org_units WHERE org_path = ANY($1::text[])", paths)
    return {r["org_path"]: (r["name"], r["level"]) for r in rows}


async def list_all_campaigns(conn: Conn) -> list[dict[str, Any]]:
    """Every campaign seen, newest first."""
    rows = await conn.fetch(
        "SELECT campaign_id, name, org_path, starts_on, ends_on, target_per_teacher, checklist_item_ids, closed_at"
        " FROM campaigns ORDER BY starts_on DESC NULLS LAST, campaign_id"
    )
    return [dict(r) for r in rows]


NO_START = date(1, 1, 1)  # campaigns without a start date sort last


def campaign_key(row: Mapping[str, Any]) -> tuple[date, str]:
    """The keyset of the campaign list: newest start first (none last), then id."""
    return (row["starts_on"] or NO_START, row["campaign_id"])


async def list_campaigns(conn: Conn, after: tuple[date, str] | None, limit: int) -> list[dict[str, Any]]:
    """Campaigns seen, newest first, the `limit` after the key `after` (see `campaign_key`)."""
    p = Params([NO_START])
    # Newest start first, then id upwards: the key's parts compare in opposite directions.
    keyset = p.conditions(
        ("(coalesce(starts_on, $1) < {0} OR coalesce(starts_on, $1) = {0} AND campaign_id > {1})", after)
    )
    select = (
        "SELECT campaign_id, name, org_path, starts_on, ends_on, target_per_teacher, checklist_item_ids, closed_at"
        " FROM campaigns"
    )
    rows = await fetch_page(conn, select, p, keyset, "coalesce(starts_on, $1) DESC, campaign_id", limit)
    return [dict(r) for r in rows]


async def list_checklist_items(conn: Conn, campaign_id: str) -> list[str]:
    """The checklist item ids of a campaign, in order (of every campaign for '')."""
    if not campaign_id:
        rows = await conn.fetch("SELECT checklist_item_ids FROM campaigns ORDER BY starts_on, campaign_id")
        return list(dict.fromkeys(i for r in rows for i in (r["checklist_item_ids"] or [])))
    items = await conn.fetchval("SELECT checklist_item_ids FROM campaigns WHERE campaign_id = $1", campaign_id)
    return list(items or [])


async def list_district_gauges(conn: Conn) -> list[asyncpg.Record]:
    """Per district and scope: families assigned/visited and open/overdue cases."""
    return await conn.fetch(
        "SELECT node, scope, metric, value FROM node_metrics WHERE parent = (SELECT min(node) FROM node_metrics"
        " WHERE parent = '') AND metric = ANY($1) AND dim = ''",
        ["families_assigned", "families_visited", "cases_open", "cases_overdue"],
    )


async def get_referrals_past_deadline(conn: Conn) -> dict[str, int]:
    """Department -> referrals escalated for want of an acknowledgement and still unanswered.

    Outreach escalates a referral (state escalated) only while it is still `requested` at its acknowledge-by
    deadline; any answer after that replaces the state.
    """
    rows = await conn.fetch("SELECT department, count(*) AS n FROM referrals WHERE state = 'escalated' GROUP BY 1")
    return {r["department"]: int(r["n"]) for r in rows}


async def get_refreshed_at(conn: Conn) -> float | None:
    """Epoch seconds of the last completed refresh of the figures (None before the first one)."""
    value = await conn.fetchval("SELECT extract(epoch FROM refreshed_at) FROM refresh_state")
    return None if value is None else float(value)


async def get_campaign_plan(conn: Conn, campaign_id: str) -> asyncpg.Record | None:
    """A campaign's period (None when reporting has not seen it)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT campaign_id, org_path, starts_on, ends_on FROM campaigns WHERE campaign_id = $1", campaign_id
    )
    return row


async def list_teacher_progress(conn: Conn, campaign_id: str, node: str) -> list[asyncpg.Record]:
    """Per teacher of a campaign inside a subtree: their school, families assigned and visits completed."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT a.teacher_id, min('/' || array_to_string((path_parts(a.org_path))[1:3], '/')) AS school_path,"
        " count(*) AS assigned, count(v.assignment_id) AS completed"
        " FROM assignments a LEFT JOIN (SELECT DISTINCT assignment_id FROM visits"
        "   WHERE campaign_id = $1 AND status = 'completed') v USING (assignment_id)"
        f" WHERE a.active AND a.campaign_id = $1 AND {subtree_sql('a.org_path', 2)}"
        " GROUP BY a.teacher_id ORDER BY a.teacher_id",
        campaign_id,
        *subtree_args(node),
    )
    return rows
