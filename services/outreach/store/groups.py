"""The special-group register."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from shared import scope
from shared.db import Conn, Params, columns, fetch_page

COLUMNS = (
    "membership_id, student_id, grp AS group, source, org_path, verified, verified_at, verified_by, registered_at,"
    " ended_at, version"
)


async def insert_membership(
    conn: asyncpg.Connection,
    membership_id: str,
    student_id: str,
    group: str,
    source: str,
    org_path: str,
    at: datetime,
) -> asyncpg.Record | None:
    """Enter a student in a group; None when they already are (an ended membership is revived)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "INSERT INTO group_memberships (membership_id, student_id, grp, source, org_path, registered_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (student_id, grp) DO UPDATE SET ended_at = NULL,"
        " source = EXCLUDED.source, registered_at = EXCLUDED.registered_at"
        " WHERE group_memberships.ended_at IS NOT NULL"
        f" RETURNING {COLUMNS}",
        membership_id,
        student_id,
        group,
        source,
        org_path,
        at,
    )
    return row


async def insert_flag_memberships(
    conn: asyncpg.Connection, rows: list[tuple[str, str, str]], group: str, source: str, at: datetime
) -> list[asyncpg.Record]:
    """Enter many (membership_id, student_id, org_path) in a group at once; the new or revived memberships."""
    created: list[asyncpg.Record] = await conn.fetch(
        "INSERT INTO group_memberships (membership_id, student_id, grp, source, org_path, registered_at)"
        " SELECT m, s, $4, $5, p, $6 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(m, s, p) ORDER BY s"
        " ON CONFLICT (student_id, grp) DO UPDATE SET ended_at = NULL,"
        " source = EXCLUDED.source, registered_at = EXCLUDED.registered_at"
        " WHERE group_memberships.ended_at IS NOT NULL"
        f" RETURNING {COLUMNS}",
        *columns(rows, 0, 1, 2),
        group,
        source,
        at,
    )
    return created


async def update_memberships_placement(
    conn: asyncpg.Connection, placements: list[tuple[str, str]]
) -> list[asyncpg.Record]:
    """Move the current memberships of students (student_id, class path) to the class they are in now; the moved."""
    return await conn.fetch(
        "UPDATE group_memberships g SET org_path = u.p FROM unnest($1::text[], $2::text[]) AS u(s, p)"
        " WHERE g.student_id = u.s AND g.org_path <> u.p AND g.ended_at IS NULL"
        " RETURNING g.membership_id, g.student_id, g.grp, g.org_path",
        [s for s, _ in placements],
        [p for _, p in placements],
    )


async def update_flagged_memberships_ended(
    conn: asyncpg.Connection, student_ids: list[str], group: str, at: datetime
) -> list[asyncpg.Record]:
    """End memberships that only came from a directory flag which no longer holds; the ended."""
    return await conn.fetch(
        "UPDATE group_memberships SET ended_at = $3 WHERE student_id = ANY($1) AND grp = $2"
        " AND source = 'directory_flag' AND ended_at IS NULL AND verified IS NOT TRUE"
        " RETURNING membership_id, student_id, grp, org_path",
        student_ids,
        group,
        at,
    )


async def get_membership(conn: Conn, membership_id: str, *, lock: bool = False) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM group_memberships WHERE membership_id = $1" + (" FOR UPDATE" if lock else ""),
        membership_id,
    )
    return row


async def update_membership_verified(
    conn: asyncpg.Connection, membership_id: str, verified: bool, by: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE group_memberships SET verified = $2, verified_by = $3, verified_at = $4 WHERE membership_id = $1",
        membership_id,
        verified,
        by,
        at,
    )


async def list_memberships(
    pool: asyncpg.Pool,
    *,
    org_path: str,
    group: str | None,
    verified: bool | None,
    include_ended: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Memberships under an org subtree (the bureau's lists), newest first, after the key (registered_at,
    membership_id) when given."""
    p = Params(scope.args(org_path))
    where = [
        scope.sql("org_path", 1),
        *([] if include_ended else ["ended_at IS NULL"]),
        *p.conditions(
            ("grp = {}", group),
            ("verified IS NOT DISTINCT FROM {}::boolean", verified),
            ("(registered_at, membership_id) < ({}, {})", after),
        ),
    ]
    select = f"SELECT {COLUMNS} FROM group_memberships"
    return await fetch_page(pool, select, p, where, "registered_at DESC, membership_id DESC", limit)


async def list_group_counts(pool: asyncpg.Pool, org_path: str) -> list[asyncpg.Record]:
    """Current members per group under a subtree."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT grp AS group, count(*) AS members, count(*) FILTER (WHERE verified) AS verified"
        f" FROM group_memberships WHERE {scope.sql('org_path', 1)} AND ended_at IS NULL"
        " GROUP BY grp ORDER BY grp",
        *scope.args(org_path),
    )
    return rows


async def insert_memberships(
    conn: asyncpg.Connection, rows: list[tuple[str, str, str, str]], source: str, now: datetime
) -> list[asyncpg.Record]:
    """Enter students in groups: (membership_id, student_id, group, org_path), unique per student and group;
    returns the new (or revived) memberships only.

    A membership is placed in the class the directory copy knows (a child may have moved since the visit; the
    finding's class otherwise), as directory events place and move it. A membership the directory flag alone held
    is taken over (no new registration), so parents coming home later do not end what a teacher found; either
    order of the flag and the finding ends the same.
    """
    if not rows:
        return []
    await conn.execute(
        "UPDATE group_memberships g SET source = $3 FROM unnest($1::text[], $2::text[]) AS u(s, grp)"
        " WHERE g.student_id = u.s AND g.grp = u.grp AND g.ended_at IS NULL AND g.source = 'directory_flag'",
        *columns(rows, 1, 2),
        source,
    )
    created: list[asyncpg.Record] = await conn.fetch(
        "INSERT INTO group_memberships (membership_id, student_id, grp, source, org_path, registered_at)"
        " SELECT u.m, u.s, u.g, $5, coalesce(st.org_path, u.p), $6::timestamptz"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(m, s, g, p)"
        " LEFT JOIN students st ON st.student_id = u.s"
        " ON CONFLICT (student_id, grp) DO UPDATE SET ended_at = NULL, source = EXCLUDED.source,"
        " registered_at = EXCLUDED.registered_at, org_path = EXCLUDED.org_path"
        " WHERE group_memberships.ended_at IS NOT NULL"
        " RETURNING membership_id, student_id, grp AS group, source, org_path",
        *columns(rows, 0, 1, 2, 3),
        source,
        now,
    )
    return created


async def list_student_groups(conn: asyncpg.Connection, student_id: str, groups: list[str]) -> list[str]:
    """Which of these groups a child is currently in."""
    rows = await conn.fetch(
        "SELECT grp FROM group_memberships WHERE student_id = $1 AND ended_at IS NULL AND grp = ANY($2::text[])"
        " ORDER BY grp",
        student_id,
        groups,
    )
    return [r["grp"] for r in rows]
