"""SQL of parent committees and their members."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from services.committees.store.common import as_dict, list_in_subtree
from shared.db import Conn, insert_row


async def list_active_committee_ids(conn: Conn, org_unit_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT committee_id FROM committees WHERE org_unit_id = $1 AND dissolved_on IS NULL", org_unit_id
    )
    return [r["committee_id"] for r in rows]


COMMITTEE_COLUMNS = ("committee_id", "org_unit_id", "org_path", "level", "formed_on")


async def insert_committee(conn: asyncpg.Connection, c: dict[str, Any]) -> None:
    await insert_row(conn, "committees", COMMITTEE_COLUMNS, c)


async def get_committee(conn: Conn, committee_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """A committee; `lock` holds its row until the transaction ends."""
    lock_sql = " FOR UPDATE" if lock else ""
    return as_dict(await conn.fetchrow(f"SELECT * FROM committees WHERE committee_id = $1{lock_sql}", committee_id))


async def list_committees(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await list_in_subtree(conn, "committees", "committee_id", path, after, limit)


async def update_committee_dissolved(conn: asyncpg.Connection, committee_id: str, on: date) -> list[str]:
    """Dissolve and end every active membership; the guardian ids that left."""
    await conn.execute("UPDATE committees SET dissolved_on = $2 WHERE committee_id = $1", committee_id, on)
    rows = await conn.fetch(
        "UPDATE committee_members SET active = false, left_at = now() WHERE committee_id = $1 AND active "
        "RETURNING guardian_id",
        committee_id,
    )
    return sorted(r["guardian_id"] for r in rows)


async def list_members(conn: Conn, committee_id: str, with_names: bool) -> list[dict[str, Any]]:
    name = "g.name" if with_names else "NULL"
    rows = await conn.fetch(
        f"SELECT m.guardian_id, {name} AS name, m.role, m.term_start, m.term_end FROM committee_members m "
        "JOIN guardians g USING (guardian_id) WHERE m.committee_id = $1 AND m.active ORDER BY m.guardian_id",
        committee_id,
    )
    return [{k: v for k, v in dict(r).items() if with_names or k != "name"} for r in rows]


async def upsert_member(conn: asyncpg.Connection, committee_id: str, m: dict[str, Any]) -> bool:
    """Add (or re-add) a member; False when the guardian is already an active member."""
    return bool(
        await conn.fetchval(
            "INSERT INTO committee_members (committee_id, guardian_id, role, term_start, term_end) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (committee_id, guardian_id) DO UPDATE SET role = EXCLUDED.role, "
            "term_start = EXCLUDED.term_start, term_end = EXCLUDED.term_end, active = true, joined_at = now(), "
            "left_at = NULL WHERE NOT committee_members.active RETURNING true",
            committee_id,
            m["guardian_id"],
            m["role"],
            m["term_start"],
            m["term_end"],
        )
    )


async def update_member_left(conn: asyncpg.Connection, committee_id: str, guardian_id: str) -> bool:
    """End an active membership; False when there was none."""
    return bool(
        await conn.fetchval(
            "UPDATE committee_members SET active = false, left_at = now() WHERE committee_id = $1 "
            "AND guardian_id = $2 AND active RETURNING true",
            committee_id,
            guardian_id,
        )
    )
