"""SQL of a merge of duplicate children: the open cases locked, a case folded into another, ids moved."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.outreach.store.cases import CASE_COLUMNS


async def list_open_cases(conn: asyncpg.Connection, student_ids: list[str]) -> dict[str, asyncpg.Record]:
    """The open case of each of these students, locked (in case id order)."""
    rows = await conn.fetch(
        f"SELECT {CASE_COLUMNS} FROM cases WHERE student_id = ANY($1::text[]) AND state <> 'closed' "
        "ORDER BY case_id FOR UPDATE",
        student_ids,
    )
    return {r["student_id"]: r for r in rows}


async def update_case_folded(
    conn: asyncpg.Connection, duplicate_case: str, survivor_case: str, risk_level: str, categories: list[str]
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """The duplicate's findings and carers join the survivor's case, which takes in its risk and categories; the
    survivor's case row after that, and the carers (staff_id, role, org_path) who were not its carers before."""
    await conn.execute("UPDATE case_findings SET case_id = $2 WHERE case_id = $1", duplicate_case, survivor_case)
    joined: list[asyncpg.Record] = await conn.fetch(
        "INSERT INTO case_carers (case_id, staff_id, role, org_path, assigned_at) "
        "SELECT $2, staff_id, role, org_path, assigned_at FROM case_carers WHERE case_id = $1 ON CONFLICT DO NOTHING"
        " RETURNING staff_id, role, org_path",
        duplicate_case,
        survivor_case,
    )
    survivor: asyncpg.Record = await conn.fetchrow(
        "UPDATE cases SET risk_level = $2, categories = $3::text[], updated_at = clock_timestamp() WHERE case_id = $1"
        f" RETURNING {CASE_COLUMNS}",
        survivor_case,
        risk_level,
        categories,
    )
    return survivor, joined


async def update_student_id(conn: asyncpg.Connection, duplicate: str, survivor: str) -> None:
    """Everything held under the duplicate's id (cases open or closed, their findings, referrals) is the survivor's
    (after its open case was folded or when the survivor has none: one open case per child holds)."""
    for table in ("cases", "case_findings", "referrals"):
        await conn.execute(f"UPDATE {table} SET student_id = $2 WHERE student_id = $1", duplicate, survivor)


async def update_memberships(conn: asyncpg.Connection, duplicate: str, survivor: str) -> list[dict[str, Any]]:
    """The duplicate's group memberships become the survivor's; where the survivor already is in the group, the
    duplicate's row goes (and is answered at the survivor's placement, so subscribers count the child once)."""
    gone = await conn.fetch(
        "DELETE FROM group_memberships d USING group_memberships k "
        "WHERE d.student_id = $1 AND k.student_id = $2 AND k.grp = d.grp "
        "RETURNING d.membership_id, d.grp, d.source, k.org_path",
        duplicate,
        survivor,
    )
    moved = await conn.fetch(
        "UPDATE group_memberships SET student_id = $2 WHERE student_id = $1 "
        "RETURNING membership_id, grp, source, org_path",
        duplicate,
        survivor,
    )
    return [dict(r) for r in [*gone, *moved]]
