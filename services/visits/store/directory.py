"""SQL over the directory copy (students, staff) that campaign plans and hand-made assignments read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

from shared.db import Conn
from shared.scope import args as subtree_args
from shared.scope import sql as subtree_sql

TEACHING_ROLES = ["class_teacher", "subject_teacher", "mental_health_teacher", "ideological_political_teacher"]


PLANNED = f"s.active AND s.family_id <> '' AND {subtree_sql('s.org_path', 1)}"  # the students a launch plans
TEACHING = f"t.active AND t.roles && $3::text[] AND {subtree_sql('t.org_path', 1)}"  # the staff who can visit


async def list_class_sizes(conn: Conn, scope: str) -> list[asyncpg.Record]:
    """(org_path, students) of each class with students a launch in `scope` plans."""
    return await conn.fetch(
        f"SELECT s.org_path, count(*) AS students FROM students s WHERE {PLANNED} GROUP BY s.org_path",
        *subtree_args(scope),
    )


async def list_class_links(conn: Conn, scope: str) -> list[asyncpg.Record]:
    """Org paths a launch must plan in one group (`paths`): the classes of each family with children in several (the
    families with one child in scope, most of them, left out first), and each class head's own path with their
    class's."""
    return await conn.fetch(
        f"SELECT array_agg(DISTINCT s.org_path) AS paths FROM students s WHERE {PLANNED} "
        f"AND s.family_id IN (SELECT s.family_id FROM students s WHERE {PLANNED} GROUP BY s.family_id "
        "HAVING count(*) > 1) GROUP BY s.family_id HAVING count(DISTINCT s.org_path) > 1 "
        "UNION ALL SELECT ARRAY[t.org_path, c.org_path] FROM staff t "
        f"JOIN (SELECT DISTINCT s.class_id, s.org_path FROM students s WHERE {PLANNED}) c "
        f"ON c.class_id = t.head_class_id WHERE {TEACHING}",
        *subtree_args(scope),
        TEACHING_ROLES,
    )


async def list_students_by_group(
    conn: asyncpg.Connection, scope: str, groups: dict[str, int], batch: int
) -> AsyncIterator[list[asyncpg.Record]]:
    """The students a launch plans with their class's group (`groups`: class path → group), by group, family and id,
    `batch` rows at a time through a server-side cursor (inside the caller's transaction): a city is never in memory
    at once."""
    cursor = await conn.cursor(
        "SELECT s.student_id, s.class_id, s.org_path, s.family_id, g.grp FROM students s "
        "JOIN unnest($3::text[], $4::int[]) AS g(path, grp) ON g.path = s.org_path "
        f"WHERE {PLANNED} ORDER BY g.grp, s.family_id, s.student_id",
        *subtree_args(scope),
        list(groups),
        list(groups.values()),
    )
    while rows := await cursor.fetch(batch):
        yield rows


async def list_teachers_in_scope(conn: Conn, scope: str) -> list[asyncpg.Record]:
    """The staff in `scope` who can visit."""
    return await conn.fetch(
        f"SELECT t.staff_id, t.org_path, t.head_class_id, t.class_ids FROM staff t WHERE {TEACHING}",
        *subtree_args(scope),
        TEACHING_ROLES,
    )


async def get_staff(conn: Conn, staff_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT staff_id, org_path, roles, active FROM staff WHERE staff_id = $1", staff_id)


async def list_family_children(conn: Conn, family_id: str, scope: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT student_id, class_id, org_path FROM students WHERE family_id = $1 AND active "
        f"AND {subtree_sql('org_path', 2)} ORDER BY student_id",
        family_id,
        *subtree_args(scope),
    )


async def list_students_of_families(conn: Conn, family_ids: list[str], scope: str) -> list[asyncpg.Record]:
    """The current children of some families inside a subtree (a campaign's), by family and id."""
    return await conn.fetch(
        "SELECT student_id, class_id, org_path, family_id FROM students "
        f"WHERE active AND family_id = ANY($3) AND {subtree_sql('org_path', 1)} ORDER BY family_id, student_id",
        *subtree_args(scope),
        family_ids,
    )
