"""All SQL of the visits service (asyncpg; set-based writes so a batch costs a handful of round trips)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg

from shared.scope import args as subtree_args
from shared.scope import sql as subtree_sql
from shared.scope import sql_contains as subtree_contains

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

TEACHING_ROLES = ["class_teacher", "subject_teacher", "mental_health_teacher", "ideological_political_teacher"]


# ------------------------------------------------------------------------------------------- campaigns

CAMPAIGN_COLUMNS = (
    "campaign_id, name, org_path, starts_on, ends_on, target_per_teacher, required_modes, checklist_version, "
    "status, created_by, created_at, launched_at, closed_at, unassigned_families"
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


async def list_campaigns(conn: Conn, scope: str) -> list[asyncpg.Record]:
    """Campaigns whose scope contains the caller's unit or lies inside the caller's subtree."""
    return await conn.fetch(
        f"SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE {subtree_sql('org_path', 1)} "
        f"OR {subtree_contains('org_path', 1)} ORDER BY created_at DESC LIMIT 500",
        *subtree_args(scope),
    )


async def set_campaign_launched(conn: Conn, campaign_id: str, unassigned: int) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE campaigns SET status = 'launched', launched_at = now(), unassigned_families = $2 "
        f"WHERE campaign_id = $1 RETURNING {CAMPAIGN_COLUMNS}",
        campaign_id,
        unassigned,
    )


async def set_campaign_closed(conn: Conn, campaign_id: str) -> asyncpg.Record:
    return await conn.fetchrow(
        "UPDATE campaigns SET status = 'closed', closed_at = now() WHERE campaign_id = $1 "
        f"RETURNING {CAMPAIGN_COLUMNS}",
        campaign_id,
    )


# ---------------------------------------------------------------------------------- directory for plans


async def students_in_scope(conn: Conn, scope: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT student_id, class_id, org_path, family_id FROM students "
        f"WHERE active AND family_id <> '' AND {subtree_sql('org_path', 1)} ORDER BY family_id, student_id",
        *subtree_args(scope),
    )


async def teachers_in_scope(conn: Conn, scope: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT staff_id, org_path, head_class_id, class_ids FROM staff "
        f"WHERE active AND roles && $3::text[] AND {subtree_sql('org_path', 1)}",
        *subtree_args(scope),
        TEACHING_ROLES,
    )


async def get_staff(conn: Conn, staff_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT staff_id, org_path, roles, active FROM staff WHERE staff_id = $1", staff_id)


async def family_children(conn: Conn, family_id: str, scope: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT student_id, class_id, org_path FROM students WHERE family_id = $1 AND active "
        f"AND {subtree_sql('org_path', 2)} ORDER BY student_id",
        family_id,
        *subtree_args(scope),
    )


# ---------------------------------------------------------------------------------------- assignments

ASSIGNMENT_COLUMNS = (
    "assignment_id", "campaign_id", "teacher_id", "family_id", "student_ids", "org_path", "school_path",
    "district_path", "status",
)  # fmt: skip


async def insert_assignments(conn: asyncpg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Bulk insert (COPY) of generated assignments, rows in ASSIGNMENT_COLUMNS order."""
    if rows:
        await conn.copy_records_to_table("assignments", records=rows, columns=list(ASSIGNMENT_COLUMNS))


async def get_assignment(conn: Conn, assignment_id: str, *, lock: bool = False) -> asyncpg.Record | None:
    sql = (
        "SELECT a.*, c.status AS campaign_status, c.org_path AS campaign_path FROM assignments a "
        "JOIN campaigns c USING (campaign_id) WHERE a.assignment_id = $1"
    )
    return await conn.fetchrow(sql + (" FOR UPDATE OF a" if lock else ""), assignment_id)


async def set_assignment_teacher(conn: Conn, assignment_id: str, teacher_id: str) -> None:
    await conn.execute(
        "UPDATE assignments SET teacher_id = $2, updated_at = now() WHERE assignment_id = $1", assignment_id, teacher_id
    )
    await conn.execute(
        "UPDATE visits SET teacher_id = $2 WHERE assignment_id = $1 AND status = 'scheduled'", assignment_id, teacher_id
    )


async def remove_assignment(conn: Conn, assignment_id: str) -> None:
    await conn.execute(
        "UPDATE assignments SET status = 'removed', updated_at = now() WHERE assignment_id = $1", assignment_id
    )
    await conn.execute(
        "UPDATE visits SET status = 'cancelled' WHERE assignment_id = $1 AND status = 'scheduled'", assignment_id
    )


async def scheduled_visit_id(conn: asyncpg.Connection, assignment_id: str) -> str | None:
    """The assignment's scheduled visit, read after its lock was taken (a fresh snapshot sees a concurrent plan)."""
    found: str | None = await conn.fetchval(
        "SELECT visit_id FROM visits WHERE assignment_id = $1 AND status = 'scheduled'", assignment_id
    )
    return found


async def schedule_visit(conn: asyncpg.Connection, visit: dict[str, Any]) -> None:
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
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT assignment_id, teacher_id, family_id, student_ids, org_path, status, planned_on, planned_mode, "
        "visit_id, visit_mode, visited_on, updated_at FROM assignments "
        f"WHERE campaign_id = $1 AND {subtree_sql('org_path', 2)} "
        "AND ($4::text IS NULL OR teacher_id = $4) AND (($5::text IS NULL AND status <> 'removed') OR status = $5) "
        "ORDER BY teacher_id, family_id LIMIT $6 OFFSET $7",
        campaign_id,
        *subtree_args(scope),
        teacher_id,
        status,
        limit,
        offset,
    )


async def progress(conn: Conn, campaign_id: str, *, level: str, scope: str) -> list[asyncpg.Record]:
    """Assigned / completed / missed / outstanding and completed visits by mode, per school or district."""
    column = {"school": "school_path", "district": "district_path"}[level]
    return await conn.fetch(
        f"SELECT {column} AS org_path, count(*) AS assigned, "
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
        f"GROUP BY {column} ORDER BY {column}",
        campaign_id,
        *subtree_args(scope),
    )


# --------------------------------------------------------------------------------------------- visits

LOCK_FOR_VISITS = """
SELECT a.assignment_id, a.campaign_id, a.teacher_id, a.family_id, a.org_path, a.status,
       c.status AS campaign_status, c.starts_on, c.ends_on, c.checklist_version, c.required_modes,
       coalesce((SELECT jsonb_object_agg(s.student_id, s.org_path) FROM students s
                 WHERE s.family_id = a.family_id AND s.active), '{}'::jsonb) AS children,
       (SELECT v.visit_id FROM visits v WHERE v.assignment_id = a.assignment_id AND v.status = 'scheduled')
           AS scheduled_visit_id
FROM assignments a JOIN campaigns c USING (campaign_id)
WHERE a.assignment_id = ANY($1::text[])
ORDER BY a.assignment_id
FOR UPDATE OF a
"""


async def lock_assignments_for_visits(conn: asyncpg.Connection, ids: list[str]) -> list[asyncpg.Record]:
    """The assignments being visited with their campaign and the family's children, locked (in id order)."""
    return await conn.fetch(LOCK_FOR_VISITS, ids)


# One statement stores a whole batch: visits, their findings and the assignments' new status. Foreign keys are
# checked at the end of the statement, so findings may reference visits inserted by the same statement.
WRITE_VISITS = """
WITH new_visits AS (
    INSERT INTO visits (visit_id, assignment_id, campaign_id, teacher_id, family_id, org_path, status, mode,
                        visited_on, duration_minutes, participants, checklist, guidance_topics, miss_reason, note,
                        recorded_by, recorded_at)
    SELECT visit_id, assignment_id, campaign_id, teacher_id, family_id, org_path, status, mode, visited_on,
           duration_minutes, participants, checklist, guidance_topics, miss_reason, note, recorded_by, recorded_at
    FROM jsonb_to_recordset($1::jsonb) AS v(visit_id text, assignment_id text, campaign_id text, teacher_id text,
         family_id text, org_path text, status text, mode text, visited_on date, duration_minutes int,
         participants jsonb, checklist jsonb, guidance_topics jsonb, miss_reason text, note text, recorded_by text,
         recorded_at timestamptz)
    -- A scheduled visit becomes the recorded one (same id).
    ON CONFLICT (visit_id) DO UPDATE SET teacher_id = EXCLUDED.teacher_id, status = EXCLUDED.status,
        mode = EXCLUDED.mode, visited_on = EXCLUDED.visited_on, duration_minutes = EXCLUDED.duration_minutes,
        participants = EXCLUDED.participants, checklist = EXCLUDED.checklist,
        guidance_topics = EXCLUDED.guidance_topics, miss_reason = EXCLUDED.miss_reason, note = EXCLUDED.note,
        recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at
    WHERE visits.status = 'scheduled'
    RETURNING 1
), new_findings AS (
    INSERT INTO findings (finding_id, visit_id, campaign_id, student_id, category, severity, note, org_path,
                          recorded_at)
    SELECT finding_id, visit_id, campaign_id, student_id, category, severity, note, org_path, recorded_at
    FROM jsonb_to_recordset($2::jsonb) AS f(finding_id text, visit_id text, campaign_id text, student_id text,
         category text, severity text, note text, org_path text, recorded_at timestamptz)
    RETURNING 1
), outcomes AS (
    UPDATE assignments a SET status = u.status, visit_id = u.visit_id, visit_mode = u.mode,
           visited_on = u.visited_on, updated_at = now()
    FROM jsonb_to_recordset($3::jsonb) AS u(assignment_id text, status text, visit_id text, mode text,
         visited_on date)
    WHERE a.assignment_id = u.assignment_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_visits), (SELECT count(*) FROM new_findings), (SELECT count(*) FROM outcomes)
"""


async def insert_visits(
    conn: asyncpg.Connection,
    visits: list[dict[str, Any]],
    findings: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
) -> None:
    """Store visits, their findings and the assignments' new status in one round trip whatever the batch size."""
    if visits:
        await conn.execute(WRITE_VISITS, visits, findings, outcomes)


async def get_visit(conn: Conn, visit_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT v.*, c.checklist_version FROM visits v JOIN campaigns c USING (campaign_id) WHERE v.visit_id = $1",
        visit_id,
    )


async def visit_findings(conn: Conn, visit_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT finding_id, student_id, category, severity, note, org_path, recorded_at FROM findings "
        "WHERE visit_id = $1 ORDER BY student_id, category",
        visit_id,
    )
