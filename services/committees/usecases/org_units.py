"""The org tree: list and read (names of units are public to signed-in callers), add and change units."""

from __future__ import annotations

from typing import Any

from services.committees.schemas import OrgUnitIn, OrgUnitPatch
from services.committees.store import org_units as store
from services.committees.usecases.common import get_unit, page, require_change, under_path, writable_unit
from services.committees.usecases.directory import patched, write_record
from shared.auth import Principal
from shared.db import Conn
from shared.problems import conflict
from shared.writes import Write

FIELDS = ("org_unit_id", "parent_id", "level", "name", "school_type")


async def list_org_units(
    conn: Conn, principal: Principal, under: str | None, after: str | None, limit: int, *, level: str | None
) -> dict[str, Any]:
    """Org units in a subtree (default: the whole city), by id."""
    path = await under_path(conn, under) or ""
    return page(await store.list_org_units(conn, path, level, after, limit + 1), limit, "org_unit_id")


async def get(conn: Conn, org_unit_id: str) -> dict[str, Any]:
    """One org unit."""
    return await get_unit(conn, org_unit_id)


async def create(w: Write, body: OrgUnitIn) -> dict[str, Any]:
    """Add an org unit under a parent inside the caller's scope."""
    await writable_unit(w, body.parent_id, "/parent_id", lock=True)
    if await store.get_org_unit(w.conn, body.org_unit_id):
        raise conflict(f"org unit {body.org_unit_id} already exists")
    await write_record(w.conn, w.clock, "org_units", body.model_dump(mode="json"), [body.parent_id], set())
    return await get_unit(w.conn, body.org_unit_id)


async def update(w: Write, org_unit_id: str, body: OrgUnitPatch) -> dict[str, Any]:
    """Rename an org unit or change a school's type (412 when `If-Match` names another version)."""
    unit = await get_unit(w.conn, org_unit_id, lock=True)
    require_change(w, unit)
    await write_record(
        w.conn, w.clock, "org_units", patched(unit, FIELDS, body), [org_unit_id, unit["parent_id"]], set()
    )
    return await get_unit(w.conn, org_unit_id)
