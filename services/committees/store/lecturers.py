"""SQL of the lecturer group and its publicity lectures."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.store.common import as_dict, list_in_subtree
from shared.db import Conn, insert_row

LECTURER_COLUMNS = ("lecturer_id", "org_unit_id", "org_path", "staff_id", "name")


async def insert_lecturer(conn: asyncpg.Connection, lec: dict[str, Any]) -> None:
    await insert_row(conn, "lecturers", LECTURER_COLUMNS, lec)


async def update_lecturer_left(conn: asyncpg.Connection, lecturer_id: str) -> bool:
    """End a lecturer's membership of the group; False when it had already ended."""
    return bool(
        await conn.fetchval(
            "UPDATE lecturers SET active = false WHERE lecturer_id = $1 AND active RETURNING true", lecturer_id
        )
    )


async def get_lecturer(conn: Conn, lecturer_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    sql = "SELECT * FROM lecturers WHERE lecturer_id = $1" + (" FOR UPDATE" if lock else "")
    return as_dict(await conn.fetchrow(sql, lecturer_id))


async def list_lecturers(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await list_in_subtree(conn, "lecturers", "lecturer_id", path, after, limit)


async def insert_lecture(conn: asyncpg.Connection, lec: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO lectures (lecture_id, lecturer_id, org_path, topic, title, given_on, audience_org_paths, "
        "headcount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        lec["lecture_id"],
        lec["lecturer_id"],
        lec["org_path"],
        lec["topic"],
        lec["title"],
        lec["given_on"],
        lec["audience_org_paths"],
        lec["headcount"],
    )


async def list_lectures(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await list_in_subtree(conn, "lectures", "lecture_id", path, after, limit)
