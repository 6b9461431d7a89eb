"""Staff: list and read (audited), register, change roles and classes, leave (`staff.left`)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain.rules import staff_view
from services.committees.schemas import StaffIn, StaffPatch
from services.committees.store import directory as store
from services.committees.store import teams
from services.committees.usecases.common import (
    READERS,
    audit_page,
    page,
    read_person,
    require_change,
    under_path,
    writable_unit,
)
from services.committees.usecases.directory import answer_audit, patched, write_record
from shared import scope
from shared.auth import Principal
from shared.contracts.committees import InstructorTeamMemberRemoved, StaffLeft
from shared.db import Conn
from shared.outbox import add_event, add_events
from shared.problems import conflict, found
from shared.writes import Write

FIELDS = ("staff_id", "name", "gender", "phone", "org_unit_id", "roles", "class_ids", "head_class_id")

audit_answer = answer_audit("staff")


async def _get(conn: Conn, staff_id: str, *, lock: bool = False) -> dict[str, Any]:
    return found(await store.get_staff(conn, staff_id, lock=lock), "staff member")


async def list_staff(
    pool: asyncpg.Pool,
    principal: Principal,
    under: str | None,
    after: str | None,
    limit: int,
    *,
    role: str | None,
    class_id: str | None,
) -> dict[str, Any]:
    """Active staff in a subtree, filtered by role or class; the read is audited."""
    principal.require(*READERS)
    async with pool.acquire() as conn, conn.transaction():
        path = scope.narrow(principal, await under_path(conn, under))
        rows = await store.list_staff(conn, path, role, class_id, after, limit + 1)
        out = page([v for r in rows if (v := staff_view(principal, r))], limit, "staff_id")
        await audit_page(conn, principal, "staff", path, out["items"], "staff_id")
    return out


async def get(pool: asyncpg.Pool, principal: Principal, staff_id: str) -> dict[str, Any]:
    """One staff member; the read is audited."""

    async def view(conn: Conn, row: dict[str, Any]) -> dict[str, Any] | None:
        return staff_view(principal, row)

    return await read_person(pool, principal, "staff", staff_id, _get, view)


async def create(w: Write, body: StaffIn) -> dict[str, Any]:
    """Register a staff member at a school (or district office)."""
    await writable_unit(w, body.org_unit_id, "/org_unit_id")
    if await store.get_staff(w.conn, body.staff_id):
        raise conflict(f"staff member {body.staff_id} already exists")
    raw = body.model_dump(mode="json")
    await write_record(
        w.conn, w.clock, "staff", raw, [body.org_unit_id, *body.class_ids, body.head_class_id or ""], set()
    )
    created = await _get(w.conn, body.staff_id)
    return await audit_answer(w.conn, w.principal, created)


async def update(w: Write, staff_id: str, body: StaffPatch) -> dict[str, Any]:
    """Change a staff member's roles, classes or contact (412 when `If-Match` names another version)."""
    row = await _get(w.conn, staff_id, lock=True)
    require_change(w, row)
    raw = patched(row, FIELDS, body)
    await write_record(
        w.conn, w.clock, "staff", raw, [raw["org_unit_id"], *raw["class_ids"], raw["head_class_id"] or ""], set()
    )
    updated = await _get(w.conn, staff_id)
    return await audit_answer(w.conn, w.principal, updated)


async def leave(w: Write, staff_id: str) -> dict[str, Any]:
    """A staff member left: deactivate, leave every instructor team they sat on, publish `staff.left` and each
    team's `member_removed`."""
    row = await _get(w.conn, staff_id, lock=True)
    require_change(w, row)
    if await store.update_staff_left(w.conn, staff_id):
        now = w.clock.now()
        await add_event(w.conn, StaffLeft(staff_id=staff_id, org_path=row["org_path"], occurred_at=now))
        ended = await teams.update_staff_memberships_ended(w.conn, staff_id)
        await add_events(w.conn, [InstructorTeamMemberRemoved(**m, occurred_at=now) for m in ended])
    return {"staff_id": staff_id, "active": False, "version": (await _get(w.conn, staff_id))["version"]}
