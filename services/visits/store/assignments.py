"""SQL of assignments (and the scheduled visit an assignment may have)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from shared.db import Conn, Params, fetch_page
from shared.scope import args as subtree_args
from shared.scope import sql as subtree_sql

ASSIGNMENT_COLUMNS = (
    "assignment_id", "campaign_id", "teacher_id", "family_id", "student_ids", "org_path", "school_path",
    "district_path", "status",
)  # fmt: skip


async def insert_assignments(conn: asyncpg.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Bulk insert (COPY) of generated assignments, rows in ASSIGNMENT_COLUMNS order (a generator is read as COPY
    sends its data)."""
    await conn.copy_records_to_table("assignments", records=rows, columns=list(ASSIGNMENT_COLUMNS))


async def get_assignment(conn: Conn, assignment_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    sql = (
        "SELECT a.*, c.status AS campaign_status, c.org_path AS campaign_path FROM assignments a "
        "JOIN campaigns c USING (campaign_id) WHERE a.assignment_id = $1"
    )
    return await conn.fetchrow(sql + (" FOR UPDATE OF a" if lock else ""), assignment_id)


async def update_assignment_teacher(conn: Conn, assignment_id: str, teacher_id: str) -> int:
    """Give the assignment (and its planned visit) to another teacher; the assignment's new version."""
    version: int = await conn.fetchval(
        "UPDATE assignments SET teacher_id = $2, updated_at = now() WHERE assignment_id = $1 RETURNING version",
        assignment_id,
        teacher_id,
    )
    await conn.execute(
        "UPDATE visits SET teacher_id = $2 WHERE assignment_id = $1 AND status = 'scheduled'", assignment_id, teacher_id
    )
    return version


async def update_assignment_removed(conn: Conn, assignment_id: str) -> int:
    """Withdraw the assignment and cancel its planned visit; the assignment's new version."""
    version: int = await conn.fetchval(
        "UPDATE assignments SET status = 'removed', updated_at = now() WHERE assignment_id = $1 RETURNING version",
        assignment_id,
    )
    await conn.execute(
        "UPDATE visits SET status = 'cancelled' WHERE assignment_id = $1 AND status = 'scheduled'", assignment_id
    )
    return version


async def get_scheduled_visit_id(conn: asyncpg.Connection, assignment_id: str) -> str | None:
    """The assignment's scheduled visit, read after its lock was taken (a fresh snapshot sees a concurrent plan)."""
    found: str | None = await conn.fetchval(
        "SELECT visit_id FROM visits WHERE assignment_id = $1 AND status = 'scheduled'", assignment_id
    )
    return found


async def upsert_scheduled_visit(conn: asyncpg.Connection, visit: dict[str, Any]) -> None:
    """Create or move the assignment's scheduled visit, and show the plan on the assignment."""
    await conn.execute(
        "INSERT INTO visits (visit_id, assignment_id, campaign_id, teacher_id, family_id, org_path, status, mode, "
        "visited_on, participants, checklist, guidance_topics, note, recorded_by) "
        "VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $8, '{}', '[]', '[]', $9, $10) "
        "ON CONFLICT (visit_id) DO UPDATE SET mode = EXCLUDED.mode, visited_on = EXCLUDED.visited_on, "
        "note = EXCLUDED.note, recorded_by = EXCLUDED.recorded_by, recorded_at = now()",
        visit["visit_id"],
        visit["assignment_id"],
        visit["campaign_id"],
        visit["teacher_id"],
        visit["family_id"],
        visit["org_path"],
        visit["mode"],
        visit["planned_on"],
        visit["note"],
        visit["recorded_by"],
    )
    await conn.execute(
        "UPDATE assignments SET planned_on = $2, planned_mode = $3, updated_at = now() WHERE assignment_id = $1",
        visit["assignment_id"],
        visit["planned_on"],
        visit["mode"],
    )


async def list_assignments(
    conn: Conn,
    campaign_id: str,
    *,
    scope: str,
    teacher_id: str | None,
    status: str | None,
    after: tuple[str, str] | None,
    limit: int,
    changed_since: datetime | None = None,
) -> list[asyncpg.Record]:
    """Assignments of a campaign in (teacher, family) order, after the `after` key when given (keyset paging); with
    `changed_since`, those updated after it, removed ones included unless a status is asked for.

    Only the filters given are stated (`Params`): a page starts at its cursor in the (campaign, teacher, family)
    index and stops after `limit` rows, however large the campaign (the whole city's 184,000 rows were read and
    sorted for every page)."""
    p = Params([campaign_id, *subtree_args(scope)])
    where = [
        "campaign_id = $1",
        subtree_sql("org_path", 2),
        *(["status <> 'removed'"] if status is None and changed_since is None else []),
        *p.conditions(
            ("teacher_id = {}", teacher_id),
            ("status = {}", status),
            ("updated_at > {}", changed_since),
            ("(teacher_id, family_id) > ({}, {})", after),
        ),
    ]
    return await fetch_page(
        conn,
        "SELECT assignment_id, teacher_id, family_id, student_ids, org_path, status, planned_on, planned_mode, "
        "visit_id, visit_mode, visited_on, updated_at, version FROM assignments",
        p,
        where,
        "teacher_id, family_id",
        limit,
    )


async def analyze_assignments(conn: Conn) -> None:
    """Refresh the table's statistics (migration 008: with the owner's rights)."""
    await conn.execute("SELECT analyze_assignments()")


# The unit each progress level groups by (SQL over assignments): its key, and the org path shown for it.
PROGRESS_UNITS = {
    "teacher": ("teacher_id", "min(school_path)"),
    "class": ("org_path", "org_path"),
    "grade": ("array_to_string((string_to_array(org_path, '/'))[1:5], '/')", None),  # /city/district/school/grade
    "school": ("school_path", "school_path"),
    "district": ("district_path", "district_path"),
}


async def list_progress(
    conn: Conn, campaign_id: str, *, level: str, scope: str, teacher_id: str | None = None
) -> list[asyncpg.Record]:
    """Assigned / completed / missed / outstanding and completed visits by mode, per teacher, class, grade, school or
    district (`key`, with the unit's `org_path`), inside a subtree, only one teacher's assignments when given."""
    key, shown = PROGRESS_UNITS[level]
    p = Params([campaign_id, *subtree_args(scope)])
    mine = "".join(p.conditions(("AND teacher_id = {} ", teacher_id)))
    return await conn.fetch(
        f"SELECT {key} AS key, {shown or key} AS org_path, count(*) AS assigned, "
        "count(*) FILTER (WHERE status = 'completed') AS completed, "
        "count(*) FILTER (WHERE status = 'missed') AS missed, "
        "count(*) FILTER (WHERE status = 'assigned') AS outstanding, "
        "count(*) FILTER (WHERE status = 'assigned' AND planned_on IS NOT NULL) AS scheduled, "
        "count(*) FILTER (WHERE visit_mode = 'in_home') AS in_home, "
        "count(*) FILTER (WHERE visit_mode = 'online') AS online, "
        "count(*) FILTER (WHERE visit_mode = 'phone') AS phone, "
        "count(*) FILTER (WHERE visit_mode = 'at_school') AS at_school, "
        "count(DISTINCT teacher_id) AS teachers "
        f"FROM assignments WHERE campaign_id = $1 AND status <> 'removed' AND {subtree_sql('org_path', 2)} "
        f"{mine}GROUP BY 1 ORDER BY 1",
        *p,
    )


async def list_teacher_progress(conn: Conn, teacher_id: str) -> list[asyncpg.Record]:
    """One teacher's assignments per launched campaign: target (assigned), done, missed, left, with the plan."""
    return await conn.fetch(
        "SELECT c.campaign_id, c.name, c.starts_on, c.ends_on, count(*) AS target, "
        "count(*) FILTER (WHERE a.status = 'completed') AS done, "
        "count(*) FILTER (WHERE a.status = 'missed') AS missed, "
        "count(*) FILTER (WHERE a.status IN ('assigned', 'missed')) AS left "
        "FROM assignments a JOIN campaigns c USING (campaign_id) "
        "WHERE a.teacher_id = $1 AND a.status <> 'removed' AND c.status = 'launched' "
        "GROUP BY c.campaign_id ORDER BY c.starts_on, c.campaign_id",
        teacher_id,
    )


async def list_open_assignments_of(conn: Conn, teacher_id: str, limit: int) -> list[asyncpg.Record]:
    """A teacher's assignments still to visit (assigned, or missed and to try again) in launched campaigns."""
    return await conn.fetch(
        "SELECT a.assignment_id, a.campaign_id, a.teacher_id, a.family_id, a.student_ids, a.org_path, a.status, "
        "a.planned_on, a.planned_mode, a.visit_id, a.visit_mode, a.visited_on, a.updated_at, a.version "
        "FROM assignments a JOIN campaigns c USING (campaign_id) "
        "WHERE a.teacher_id = $1 AND a.status IN ('assigned', 'missed') AND c.status = 'launched' "
        "ORDER BY a.planned_on NULLS LAST, a.campaign_id, a.family_id LIMIT $2",
        teacher_id,
        limit,
    )


async def list_open_assignments_of_staff(conn: asyncpg.Connection, staff_ids: list[str]) -> list[asyncpg.Record]:
    """Open assignments (not visited yet, or missed) of some teachers in launched campaigns, with the campaign's
    scope and target, locked in id order (a leaver's families to hand over)."""
    return await conn.fetch(
        "SELECT a.assignment_id, a.campaign_id, a.teacher_id, a.family_id, a.org_path, a.status, "
        "c.org_path AS campaign_path, c.target_per_teacher FROM assignments a JOIN campaigns c USING (campaign_id) "
        "WHERE a.teacher_id = ANY($1) AND a.status IN ('assigned', 'missed') AND c.status = 'launched' "
        "ORDER BY a.assignment_id FOR UPDATE OF a",
        staff_ids,
    )


async def list_teacher_loads(conn: Conn, campaign_id: str, staff_ids: list[str]) -> dict[str, int]:
    """Families each of some teachers has in a campaign."""
    rows = await conn.fetch(
        "SELECT teacher_id, count(*) AS n FROM assignments WHERE campaign_id = $1 AND status <> 'removed' "
        "AND teacher_id = ANY($2) GROUP BY teacher_id",
        campaign_id,
        staff_ids,
    )
    return {r["teacher_id"]: r["n"] for r in rows}
