"""SQL of campaigns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shared.db import Conn, Params, fetch_page
from shared.scope import args as subtree_args
from shared.scope import sql as subtree_sql
from shared.scope import sql_contains as subtree_contains

CAMPAIGN_COLUMNS = (
    "campaign_id, name, org_path, starts_on, ends_on, target_per_teacher, required_modes, checklist_version, "
    "status, created_by, created_at, launched_at, closed_at, unassigned_families, version"
)


async def insert_campaign(conn: Conn, c: dict[str, Any]) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO campaigns (campaign_id, name, org_path, starts_on, ends_on, target_per_teacher, "
        "required_modes, checklist_version, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        f"RETURNING {CAMPAIGN_COLUMNS}",
        c["campaign_id"],
        c["name"],
        c["org_path"],
        c["starts_on"],
        c["ends_on"],
        c["target_per_teacher"],
        c["required_modes"],
        c["checklist_version"],
        c["created_by"],
    )


async def get_campaign(conn: Conn, campaign_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    sql = f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE campaign_id = $1"
    return await conn.fetchrow(sql + (" FOR UPDATE" if lock else ""), campaign_id)


async def list_campaigns(
    conn: Conn, scope: str, *, after: tuple[datetime, str] | None, limit: int
) -> list[asyncpg.Record]:
    """Campaigns whose scope contains the caller's unit or lies inside the caller's subtree, newest first, after
    the `after` key (created_at, campaign_id) when given (keyset paging)."""
    p = Params(subtree_args(scope))
    where = [
        f"({subtree_sql('org_path', 1)} OR {subtree_contains('org_path', 1)})",
        *p.conditions(("(created_at, campaign_id) < ({}, {})", after)),
    ]
    return await fetch_page(
        conn, f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns", p, where, "created_at DESC, campaign_id DESC", limit
    )


async def update_campaign_launched(conn: Conn, campaign_id: str, unassigned: int, at: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE campaigns SET status = 'launched', launched_at = $3, unassigned_families = $2 "
        f"WHERE campaign_id = $1 RETURNING {CAMPAIGN_COLUMNS}",
        campaign_id,
        unassigned,
        at,
    )


async def update_campaign_closed(conn: Conn, campaign_id: str, at: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        f"UPDATE campaigns SET status = 'closed', closed_at = $2 WHERE campaign_id = $1 RETURNING {CAMPAIGN_COLUMNS}",
        campaign_id,
        at,
    )
