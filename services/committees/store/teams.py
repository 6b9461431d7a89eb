"""SQL of instructor teams and their members."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.store.common import as_dict, list_in_subtree
from shared.db import Conn, insert_row

TEAM_COLUMNS = ("team_id", "org_unit_id", "org_path", "name")


async def insert_team(conn: asyncpg.Connection, t: dict[str, Any]) -> None:
    await insert_row(conn, "instructor_teams", TEAM_COLUMNS, t)


async def get_team(conn: Conn, team_id: str) -> dict[str, Any] | None:
    """A team with its active members."""
    row = as_dict(await conn.fetchrow("SELECT * FROM instructor_teams WHERE team_id = $1", team_id))
    if row is not None:
        row["members"] = [
            dict(r)
            for r in await conn.fetch(
                "SELECT member_id, staff_id, name, role, is_lead, version FROM team_members"
                " WHERE team_id = $1 AND active ORDER BY member_id",
                team_id,
            )
        ]
    return row


async def list_teams(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await list_in_subtree(conn, "instructor_teams", "team_id", path, after, limit)


async def insert_team_member(conn: asyncpg.Connection, m: dict[str, Any]) -> str | None:
    """Add a member; None, or the unique index it would break (`team_one_lead`, `team_staff_once`)."""
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO team_members (member_id, team_id, staff_id, name, role, is_lead) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                m["member_id"],
                m["team_id"],
                m["staff_id"],
                m["name"],
                m["role"],
                m["is_lead"],
            )
    except asyncpg.UniqueViolationError as exc:
        return exc.constraint_name or "unique"
    return None


async def update_staff_memberships_ended(conn: asyncpg.Connection, staff_id: str) -> list[dict[str, Any]]:
    """End every active team membership of a staff member; the ended ones (team_id, member_id, the team's org_path)."""
    rows = await conn.fetch(
        "UPDATE team_members m SET active = false FROM instructor_teams t"
        " WHERE m.staff_id = $1 AND m.active AND t.team_id = m.team_id"
        " RETURNING m.team_id, m.member_id, t.org_path",
        staff_id,
    )
    return [dict(r) for r in rows]


async def get_member_version(conn: asyncpg.Connection, team_id: str, member_id: str) -> int | None:
    """An active member's version, the row locked; None when there is no such active member."""
    version: int | None = await conn.fetchval(
        "SELECT version FROM team_members WHERE team_id = $1 AND member_id = $2 AND active FOR UPDATE",
        team_id,
        member_id,
    )
    return version


async def update_team_member_removed(conn: asyncpg.Connection, team_id: str, member_id: str) -> bool:
    """End an active membership; False when there was none."""
    return bool(
        await conn.fetchval(
            "UPDATE team_members SET active = false WHERE team_id = $1 AND member_id = $2 AND active RETURNING true",
            team_id,
            member_id,
        )
    )
