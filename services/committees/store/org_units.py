"""SQL of the org tree."""

from __future__ import annotations

from typing import Any

from services.committees.store.common import as_dict
from shared import scope
from shared.db import Conn, Params, fetch_page


async def get_org_unit(conn: Conn, org_unit_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """One org unit; `lock` holds its row until the transaction ends (writes that depend on the unit)."""
    lock_sql = " FOR UPDATE" if lock else ""
    return as_dict(await conn.fetchrow(f"SELECT * FROM org_units WHERE org_unit_id = $1{lock_sql}", org_unit_id))


async def list_org_units(
    conn: Conn, under: str, level: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    p = Params(scope.args(under))
    where = [scope.sql("org_path", 1), *p.conditions(("level = {}", level), ("org_unit_id > {}", after))]
    select = "SELECT org_unit_id, parent_id, level, org_path, name, school_type, version FROM org_units"
    rows = await fetch_page(conn, select, p, where, "org_unit_id", limit)
    return [dict(r) for r in rows]


async def list_org_unit_paths(conn: Conn, ids: list[str]) -> dict[str, str]:
    """The org paths of those of `ids` that exist."""
    rows = await conn.fetch("SELECT org_unit_id, org_path FROM org_units WHERE org_unit_id = ANY($1::text[])", ids)
    return {r["org_unit_id"]: r["org_path"] for r in rows}


async def list_root_paths(conn: Conn) -> list[str]:
    """The org paths of the tree's roots (the city)."""
    return [r["org_path"] for r in await conn.fetch("SELECT org_path FROM org_units WHERE parent_id IS NULL")]
