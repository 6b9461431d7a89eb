"""SQL over the directory copy (students, staff) that campaign plans and hand-made assignments read."""

from __future__ import annotations

import asyncpg

from shared.db import Conn
from shared.scope import args as subtree_args
from shared.scope import sql as subtree_sql

TEACHING_ROLES = ["class_teacher", "subject_teacher", "mental_health_teacher", "ideological_political_teacher"]


async def list_students_in_scope(conn: Conn, scope: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT student_id, class_id, org_path, family_id FROM students "
        f"WHERE active AND family_id <> '' AND {subtree_sql('org_path', 1)} ORDER BY family_id, student_id",
        *subtree_args(scope),
    )


async def list_teachers_in_scope(conn: Conn, scope: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT staff_id, org_path, head_class_id, class_ids FROM staff "
        f"WHERE active AND roles && $3::text[] AND {subtree_sql('org_path', 1)}",
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
