"""Reads of the directory copy (the kit's tables, written by shared.directory): carers, left-behind children."""

from __future__ import annotations

import asyncpg

from services.outreach.domain import CandidateQuery, StaffMember, staff_member

# Index lookups of only the batch's keys, whatever the tables' size: the changed students' families (by key), the
# away families' children (by key). A join of the keys with `= ANY` or `unnest` lets the planner hash a sequential
# scan of students and of families instead (5,000 keys against 200 k rows looks cheaper to it): ~180 ms a poll at the
# full city, growing with the city (issue 16). `OFFSET 0` keeps each lateral subquery a probe per key (a subquery
# with OFFSET is not pulled up into a join). The changed students' own rows come from the batch (what the upsert
# returned, in this transaction): their class paths and families as stored now.
LEFT_BEHIND = """
SELECT k.student_id, k.org_path
  FROM unnest($1::text[], $2::text[], $3::text[]) AS k(student_id, family_id, org_path)
 CROSS JOIN LATERAL (SELECT FROM families f WHERE f.family_id = k.family_id AND f.parents_work_away
                       AND k.student_id = ANY(f.student_ids) OFFSET 0) AS away
UNION
SELECT k.student_id, s.org_path
  FROM unnest($4::text[]) AS k(student_id)
 CROSS JOIN LATERAL (SELECT s.org_path FROM students s WHERE s.student_id = k.student_id OFFSET 0) AS s
"""


async def list_left_behind_children(
    conn: asyncpg.Connection, students: list[tuple[str, str, str]], away_children: list[str]
) -> list[tuple[str, str]]:
    """(student, class path) of the children the directory flags as left behind: among `students` (student, family,
    class path, as stored now) those whose family, as stored now, has its parents away and lists them; and the
    children listed by families whose parents work away (`away_children`) that the copy knows."""
    rows = await conn.fetch(
        LEFT_BEHIND,
        [s[0] for s in students],
        [s[1] for s in students],
        [s[2] for s in students],
        away_children,
    )
    return [(r["student_id"], r["org_path"]) for r in rows]


# A team member stands for a role only while they are staff: a member who left the school (staff tombstone) is no
# carer, though committees still lists the membership; one whose staff row has not arrived yet still counts.
CANDIDATES_MANY = """
SELECT staff_id, roles, org_path, head_class_id FROM staff
 WHERE active AND (head_class_id = ANY($1) OR (org_path = ANY($2) AND roles && $3))
UNION ALL
SELECT staff_id, ARRAY[role], org_path, NULL FROM team_members t
 WHERE active AND staff_id IS NOT NULL AND org_path = ANY($2) AND role = ANY($4)
   AND NOT EXISTS (SELECT 1 FROM staff s WHERE s.staff_id = t.staff_id AND NOT s.active)
"""


async def list_carer_candidates(conn: asyncpg.Connection, q: CandidateQuery) -> list[StaffMember]:
    """Possible carers for many classes at once: their own teachers and role holders at the levels above."""
    rows = await conn.fetch(CANDIDATES_MANY, q.class_ids, q.levels, q.roles, q.team_roles)
    return [staff_member(r["staff_id"], r["roles"], r["org_path"], r["head_class_id"]) for r in rows]


async def list_staff_at(conn: asyncpg.Connection, org_paths: list[str]) -> list[StaffMember]:
    """The active staff placed exactly at these org units (not below), with their roles."""
    rows = await conn.fetch(
        "SELECT staff_id, roles, org_path, head_class_id FROM staff WHERE active AND org_path = ANY($1::text[])",
        org_paths,
    )
    return [staff_member(r["staff_id"], r["roles"], r["org_path"], r["head_class_id"]) for r in rows]


async def get_student_path(conn: asyncpg.Connection, student_id: str) -> str | None:
    """The child's class path as the copy knows it."""
    path: str | None = await conn.fetchval("SELECT org_path FROM students WHERE student_id = $1", student_id)
    return path


async def get_living_arrangement(conn: asyncpg.Connection, student_id: str) -> str | None:
    """The child's living arrangement, from the family the copy knows."""
    found: str | None = await conn.fetchval(
        "SELECT f.living_arrangement FROM students s JOIN families f USING (family_id) WHERE s.student_id = $1",
        student_id,
    )
    return found
