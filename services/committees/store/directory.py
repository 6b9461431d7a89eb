"""SQL reads and single-record writes of the directory."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared import scope
from shared.db import Conn, Params, fetch_page

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
    p = Params(scope.args(under))
    where = [
        "active",
        scope.sql("org_path", 1),
        *p.conditions(("{} = ANY(roles)", role), ("class_ids @> ARRAY[{}::text]", class_id), ("staff_id > {}", after)),
    ]
    rows = await fetch_page(conn, f"SELECT {STAFF_COLS} FROM staff", p, where, "staff_id", limit)
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
    p = Params(scope.args(under) if under is not None else ())
    where = [
        "active",
        *([scope.sql("org_path", 1)] if under is not None else []),
        *p.conditions(("class_id = ANY({}::text[])", class_ids), ("student_id > {}", after)),
    ]
    rows = await fetch_page(conn, f"SELECT {STUDENT_COLS} FROM students", p, where, "student_id", limit)
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


async def update_family_registrar(conn: Conn, family_id: str, org_path: str) -> None:
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


NATIONAL_ID_INDEX = "students_national_id"  # the unique index of migration 005_student_duplicates.sql


async def get_national_id_holder(conn: Conn, national_id: str) -> str | None:
    """The student id holding a national ID (None when nobody does)."""
    holder: str | None = await conn.fetchval("SELECT student_id FROM students WHERE national_id = $1", national_id)
    return holder


async def list_students_locked(conn: asyncpg.Connection, student_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Students by id, their rows locked in id order (two writes locking the same pair cannot deadlock)."""
    rows = await conn.fetch(
        f"SELECT {STUDENT_COLS}, merged_into FROM students WHERE student_id = ANY($1::text[]) "
        "ORDER BY student_id FOR UPDATE",
        student_ids,
    )
    return {r["student_id"]: dict(r) for r in rows}


async def update_student_merged(conn: asyncpg.Connection, duplicate_id: str, survivor_id: str) -> None:
    """The duplicate is merged into the survivor: inactive, naming it; its national ID moves when the survivor has
    none (one statement: the unique index sees the move whole)."""
    await conn.execute(
        """
        UPDATE students s SET
            active = CASE WHEN s.student_id = $1 THEN false ELSE s.active END,
            merged_into = CASE WHEN s.student_id = $1 THEN $2 ELSE s.merged_into END,
            national_id = CASE
                WHEN s.student_id = $1 AND k.national_id IS NULL THEN NULL
                WHEN s.student_id = $2 AND s.national_id IS NULL THEN d.national_id
                ELSE s.national_id END,
            updated_at = now()
        FROM students d, students k
        WHERE d.student_id = $1 AND k.student_id = $2 AND s.student_id IN ($1, $2)
        """,
        duplicate_id,
        survivor_id,
    )


DUPLICATE_POOL = """
WITH me AS (SELECT student_id, birth_date, family_id FROM students WHERE student_id = $1),
phones AS (SELECT g.phone FROM guardians g JOIN me USING (family_id) WHERE g.phone IS NOT NULL),
pool AS (
    SELECT o.student_id FROM students o JOIN me ON o.birth_date = me.birth_date
     WHERE {county}
    UNION
    SELECT o.student_id FROM guardians g JOIN students o USING (family_id) WHERE g.phone IN (SELECT phone FROM phones)
    UNION
    SELECT student_id FROM me
)
SELECT s.student_id, s.name, s.birth_date, s.org_path,
       coalesce(array_agg(g.phone) FILTER (WHERE g.phone IS NOT NULL), '{{}}') AS phones
FROM pool JOIN students s USING (student_id) LEFT JOIN guardians g ON g.family_id = s.family_id
WHERE s.active OR s.student_id = $1
GROUP BY s.student_id
"""


async def list_duplicate_pool(conn: Conn, student_id: str, county: str) -> list[dict[str, Any]]:
    """The student and the active students that could be the same child: born the same day in `county`, or with a
    guardian phone in common (anywhere)."""
    sql = DUPLICATE_POOL.format(county=scope.sql("o.org_path", 2))
    return [dict(r) for r in await conn.fetch(sql, student_id, *scope.args(county))]


# Pairs (a student this transaction created, another record) that could be the same child: born the same day in
# the same county with the same first character of the name (the surname), or a guardian phone in common.
IMPORTED_PAIRS = """
WITH new AS (
    SELECT student_id, name, birth_date, org_path, family_id FROM students WHERE created_at = now() AND active
),
pairs AS (
    SELECT n.student_id AS a, o.student_id AS b
    FROM new n JOIN students o ON o.birth_date = n.birth_date AND left(o.name, 1) = left(n.name, 1)
     AND split_part(o.org_path, '/', 3) = split_part(n.org_path, '/', 3)
    WHERE o.student_id <> n.student_id AND o.active
    UNION
    SELECT n.student_id, o.student_id
    FROM new n JOIN guardians gn ON gn.family_id = n.family_id AND gn.phone IS NOT NULL
    JOIN guardians go ON go.phone = gn.phone AND go.family_id <> gn.family_id
    JOIN students o ON o.family_id = go.family_id AND o.active
)
SELECT a, b FROM pairs
"""


async def list_imported_pairs(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """Pairs (created by this transaction's import, other record) worth scoring as duplicates."""
    return [(r["a"], r["b"]) for r in await conn.fetch(IMPORTED_PAIRS)]


async def list_duplicate_facts(conn: asyncpg.Connection, student_ids: list[str]) -> list[dict[str, Any]]:
    """What the duplicate rule compares of these students (name, birth date, path, their guardians' phones)."""
    rows = await conn.fetch(
        "SELECT s.student_id, s.name, s.birth_date, s.org_path, "
        "coalesce(array_agg(g.phone) FILTER (WHERE g.phone IS NOT NULL), '{}') AS phones "
        "FROM students s LEFT JOIN guardians g ON g.family_id = s.family_id "
        "WHERE s.student_id = ANY($1::text[]) GROUP BY s.student_id",
        student_ids,
    )
    return [dict(r) for r in rows]


async def update_staff_left(conn: asyncpg.Connection, staff_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "UPDATE staff SET active = false, updated_at = now() WHERE staff_id = $1 AND active RETURNING true",
            staff_id,
        )
    )
