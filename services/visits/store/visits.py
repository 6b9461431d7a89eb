"""SQL of visit records and findings: the locking read and the one set-based write of a batch."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.db import Conn

LOCK_FOR_VISITS = """
SELECT a.assignment_id, a.campaign_id, a.teacher_id, a.family_id, a.org_path, a.status, a.version,
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


async def list_assignments_for_visits(conn: asyncpg.Connection, ids: list[str]) -> list[asyncpg.Record]:
    """The assignments being visited with their campaign and the family's children, locked (in id order)."""
    return await conn.fetch(LOCK_FOR_VISITS, ids)


# One statement stores a whole batch: visits, their findings and the assignments' new status. Foreign keys are
# checked at the end of the statement, so findings may reference visits inserted by the same statement.
WRITE_VISITS = """
WITH new_visits AS (
    INSERT INTO visits (visit_id, assignment_id, campaign_id, teacher_id, family_id, org_path, status, mode,
                        visited_on, duration_minutes, participants, checklist, guidance_topics, miss_reason, note,
                        recorded_by, recorded_at, visited_at, requirements, flags)
    SELECT visit_id, assignment_id, campaign_id, teacher_id, family_id, org_path, status, mode, visited_on,
           duration_minutes, participants, checklist, guidance_topics, miss_reason, note, recorded_by, recorded_at,
           visited_at, requirements, flags
    FROM jsonb_to_recordset($1::jsonb) AS v(visit_id text, assignment_id text, campaign_id text, teacher_id text,
         family_id text, org_path text, status text, mode text, visited_on date, duration_minutes int,
         participants jsonb, checklist jsonb, guidance_topics jsonb, miss_reason text, note text, recorded_by text,
         recorded_at timestamptz, visited_at timestamptz, requirements jsonb, flags jsonb)
    -- A scheduled visit becomes the recorded one (same id).
    ON CONFLICT (visit_id) DO UPDATE SET teacher_id = EXCLUDED.teacher_id, status = EXCLUDED.status,
        mode = EXCLUDED.mode, visited_on = EXCLUDED.visited_on, duration_minutes = EXCLUDED.duration_minutes,
        participants = EXCLUDED.participants, checklist = EXCLUDED.checklist,
        guidance_topics = EXCLUDED.guidance_topics, miss_reason = EXCLUDED.miss_reason, note = EXCLUDED.note,
        recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at, visited_at = EXCLUDED.visited_at,
        requirements = EXCLUDED.requirements, flags = EXCLUDED.flags
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
    RETURNING a.assignment_id, a.version
)
SELECT assignment_id, version FROM outcomes
"""


async def insert_visits(
    conn: asyncpg.Connection,
    visits: list[dict[str, Any]],
    findings: list[dict[str, Any]],
    outcomes: list[dict[str, Any]],
) -> dict[str, int]:
    """Store visits, their findings and the assignments' new status in one round trip whatever the batch size;
    the assignments' new versions."""
    if not visits:
        return {}
    return {r["assignment_id"]: r["version"] for r in await conn.fetch(WRITE_VISITS, visits, findings, outcomes)}


async def get_visit(conn: Conn, visit_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT v.*, c.checklist_version FROM visits v JOIN campaigns c USING (campaign_id) WHERE v.visit_id = $1",
        visit_id,
    )


async def list_visit_findings(conn: Conn, visit_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT finding_id, student_id, category, severity, note, org_path, recorded_at FROM findings "
        "WHERE visit_id = $1 ORDER BY student_id, category",
        visit_id,
    )
