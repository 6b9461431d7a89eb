"""SQL reads and single-record writes of the directory."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared import scope
from shared.db import Conn

STUDENT_COLS = (
    "student_id, student_no, name, gender, birth_date, national_id, class_id, org_path, family_id, active, updated_at, "
    "version"
)
STAFF_COLS = "staff_id, name, gender, phone, org_unit_id, org_path, roles, class_ids, head_class_id, active, version"


async def get_staff(conn: Conn, staff_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """A staff member; `lock` holds the row until the transaction ends."""
    lock_sql = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT {STAFF_COLS} FROM staff WHERE staff_id = $1{lock_sql}", staff_id)
    return dict(row) if row else None


async def list_staff(
    conn: Conn, under: str, role: str | None, class_id: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {STAFF_COLS} FROM staff WHERE active AND {scope.sql('org_path', 1)} "
        "AND ($3::text IS NULL OR $3 = ANY(roles)) AND ($4::text IS NULL OR class_ids @> ARRAY[$4]) "
        "AND ($5::text IS NULL OR staff_id > $5) ORDER BY staff_id LIMIT $6",
        *scope.args(under),
        role,
        class_id,
        after,
        limit,
    )
    return [dict(r) for r in rows]


async def get_teacher_classes(conn: Conn, staff_id: str | None) -> frozenset[str]:
    """Classes an active staff member teaches or heads."""
    if not staff_id:
        return frozenset()
    row = await conn.fetchrow("SELECT class_ids, head_class_id FROM staff WHERE staff_id = $1 AND active", staff_id)
    if row is None:
        return frozenset()
    return frozenset([*row["class_ids"], *([row["head_class_id"]] if row["head_class_id"] else [])])


async def get_student(conn: Conn, student_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """A student; `lock` holds the row until the transaction ends."""
    lock_sql = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(f"SELECT {STUDENT_COLS} FROM students WHERE student_id = $1{lock_sql}", student_id)
    return dict(row) if row else None


async def get_student_by_no(conn: Conn, student_no: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(f"SELECT {STUDENT_COLS} FROM students WHERE student_no = $1", student_no)
    return dict(row) if row else None


async def list_students(
    conn: Conn, under: str | None, class_ids: list[str] | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {STUDENT_COLS} FROM students WHERE active "
        f"AND ($1::text IS NULL OR {scope.sql('org_path', 1)}) "
        "AND ($3::text[] IS NULL OR class_id = ANY($3)) AND ($4::text IS NULL OR student_id > $4) "
        "ORDER BY student_id LIMIT $5",
        under if under is None else scope.normalize(under),
        scope.like_below(under or "/"),
        class_ids,
        after,
        limit,
    )
    return [dict(r) for r in rows]


async def get_family(conn: Conn, family_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    """A family with its guardians and active students; `lock` holds the family's row until the transaction ends."""
    lock_sql = " FOR UPDATE" if lock else ""
    row = await conn.fetchrow(
        "SELECT family_id, family_no, parents_work_away, living_arrangement, address, registered_by_path, version "
        "FROM families "
        f"WHERE family_id = $1{lock_sql}",
        family_id,
    )
    if row is None:
        return None
    out = dict(row)
    out["guardians"] = [
        dict(g)
        for g in await conn.fetch(
            "SELECT guardian_id, guardian_no, name, relation, phone, is_primary, works_away FROM guardians "
            "WHERE family_id = $1 ORDER BY guardian_id",
            family_id,
        )
    ]
    out["students"] = [
        dict(s)
        for s in await conn.fetch(
            "SELECT student_id, class_id, org_path FROM students WHERE family_id = $1 AND active ORDER BY student_id",
            family_id,
        )
    ]
    return out


async def get_family_no(conn: Conn, family_id: str) -> str | None:
    no: str | None = await conn.fetchval("SELECT family_no FROM families WHERE family_id = $1", family_id)
    return no


async def get_family_id(conn: Conn, family_no: str) -> str | None:
    """The family id of a family number (None when unknown)."""
    family_id: str | None = await conn.fetchval("SELECT family_id FROM families WHERE family_no = $1", family_no)
    return family_id


async def list_family_student_paths(conn: Conn, family_id: str) -> list[str]:
    """Org paths of the family's active students."""
    rows = await conn.fetch("SELECT org_path FROM students WHERE family_id = $1 AND active", family_id)
    return [r["org_path"] for r in rows]


async def get_family_registrar(conn: Conn, family_id: str) -> str | None:
    """The org path of the admin who registered the family (None: imported, or unknown family)."""
    path: str | None = await conn.fetchval("SELECT registered_by_path FROM families WHERE family_id = $1", family_id)
    return path


async def set_family_registrar(conn: Conn, family_id: str, org_path: str) -> None:
    """Record the org unit of the admin who registered the family (once)."""
    await conn.execute(
        "UPDATE families SET registered_by_path = $2 WHERE family_id = $1 AND registered_by_path IS NULL",
        family_id,
        org_path,
    )


async def get_guardian_id(conn: Conn, guardian_no: str) -> str | None:
    """The guardian id of a guardian number (None when unknown)."""
    guardian_id: str | None = await conn.fetchval(
        "SELECT guardian_id FROM guardians WHERE guardian_no = $1", guardian_no
    )
    return guardian_id


async def get_guardian(conn: Conn, guardian_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT g.guardian_id, g.guardian_no, g.family_id, f.family_no, g.name, g.relation, g.phone, g.is_primary, "
        "g.works_away FROM guardians g JOIN families f USING (family_id) WHERE guardian_id = $1",
        guardian_id,
    )
    return dict(row) if row else None


async def list_guardian_student_paths(conn: Conn, guardian_id: str) -> list[str]:
    """Org paths of the active students in the guardian's family."""
    rows = await conn.fetch(
        "SELECT s.org_path FROM guardians g JOIN students s USING (family_id) WHERE g.guardian_id = $1 AND s.active",
        guardian_id,
    )
    return [r["org_path"] for r in rows]


async def update_student_left(conn: asyncpg.Connection, student_id: str) -> str | None:
    """Mark a student as left; the family id, or None if not active."""
    family_id: str | None = await conn.fetchval(
        "UPDATE students SET active = false, updated_at = now() WHERE student_id = $1 AND active RETURNING family_id",
        student_id,
    )
    return family_id


async def update_staff_left(conn: asyncpg.Connection, staff_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "UPDATE staff SET active = false, updated_at = now() WHERE staff_id = $1 AND active RETURNING true",
            staff_id,
        )
    )
