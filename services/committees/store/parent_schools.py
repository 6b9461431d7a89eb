"""SQL of parent schools, their sessions, enrolment and attendance."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.store.common import as_dict, list_in_subtree
from shared import scope
from shared.db import Conn, Params, insert_row

PARENT_SCHOOL_COLUMNS = ("parent_school_id", "org_unit_id", "org_path", "kind", "name")


async def insert_parent_school(conn: asyncpg.Connection, p: dict[str, Any]) -> None:
    await insert_row(conn, "parent_schools", PARENT_SCHOOL_COLUMNS, p)


async def get_parent_school(conn: Conn, parent_school_id: str) -> dict[str, Any] | None:
    return as_dict(await conn.fetchrow("SELECT * FROM parent_schools WHERE parent_school_id = $1", parent_school_id))


async def list_parent_schools(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await list_in_subtree(conn, "parent_schools", "parent_school_id", path, after, limit)


SESSION_COLUMNS = ("session_id", "parent_school_id", "topic", "held_on", "mode", "speaker", "join_url")


async def insert_session(conn: asyncpg.Connection, s: dict[str, Any]) -> None:
    await insert_row(conn, "parent_school_sessions", SESSION_COLUMNS, s)


async def get_session(
    conn: Conn, parent_school_id: str, session_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    """A session with its enrolled, attended and expected head-counts (its row locked with `lock`)."""
    row = await conn.fetchrow(
        "SELECT s.*, "
        "(SELECT count(*) FROM session_enrolments e WHERE e.session_id = s.session_id) AS enrolled, "
        "(SELECT count(*) FROM session_attendance a WHERE a.session_id = s.session_id AND a.attended) AS attended, "
        "(SELECT count(*) FROM (SELECT guardian_id FROM session_enrolments e WHERE e.session_id = s.session_id "
        " UNION SELECT guardian_id FROM session_attendance a WHERE a.session_id = s.session_id AND a.attended) x) "
        "AS expected "
        "FROM parent_school_sessions s WHERE s.session_id = $1 AND s.parent_school_id = $2"
        + (" FOR UPDATE OF s" if lock else ""),
        session_id,
        parent_school_id,
    )
    return as_dict(row)


async def list_sessions(conn: Conn, parent_school_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT session_id, topic, held_on, mode, speaker, status, join_url, version FROM parent_school_sessions "
        "WHERE parent_school_id = $1 ORDER BY held_on, session_id",
        parent_school_id,
    )
    return [dict(r) for r in rows]


async def insert_enrolments(conn: asyncpg.Connection, session_id: str, guardian_ids: list[str]) -> int:
    """Enrol guardians (those already enrolled are skipped); how many were added."""
    rows = await conn.fetch(
        "INSERT INTO session_enrolments (session_id, guardian_id) SELECT $1, unnest($2::text[]) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        session_id,
        guardian_ids,
    )
    return len(rows)


async def update_session_held(conn: asyncpg.Connection, session_id: str) -> bool:
    """Mark a scheduled session held; False when it already was."""
    return bool(
        await conn.fetchval(
            "UPDATE parent_school_sessions SET status = 'held' WHERE session_id = $1 AND status = 'scheduled' "
            "RETURNING true",
            session_id,
        )
    )


async def upsert_attendance(
    conn: asyncpg.Connection,
    session_id: str,
    records: list[tuple[str, bool]],
    *,
    online: bool = False,
    minutes: list[int] | None = None,
) -> list[str]:
    """Upsert attendance (in person, or online with the minutes connected); the guardian ids whose record is new or
    changed (attended or the channel; the minutes alone change nothing)."""
    rows = await conn.fetch(
        "INSERT INTO session_attendance (session_id, guardian_id, attended, online, online_minutes) "
        "SELECT $1, g, a, $4, m FROM unnest($2::text[], $3::boolean[], $5::int[]) AS t(g, a, m) "
        "ON CONFLICT (session_id, guardian_id) DO UPDATE SET attended = EXCLUDED.attended, online = EXCLUDED.online,"
        " online_minutes = EXCLUDED.online_minutes, recorded_at = now() "
        "WHERE (session_attendance.attended, session_attendance.online) IS DISTINCT FROM"
        " (EXCLUDED.attended, EXCLUDED.online) RETURNING guardian_id",
        session_id,
        [g for g, _ in records],
        [a for _, a in records],
        online,
        minutes if minutes is not None else [None] * len(records),
    )
    return [r["guardian_id"] for r in rows]


async def list_completion(conn: Conn, parent_school_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Per guardian expected at any session of the parent school (enrolled or attending), in id order: the held
    sessions and those attended, online and in person."""
    p = Params([parent_school_id])
    after_sql = "".join(p.conditions((" WHERE g.guardian_id > {}", after)))
    rows = await conn.fetch(
        "WITH ss AS (SELECT session_id, status FROM parent_school_sessions WHERE parent_school_id = $1),"
        " g AS (SELECT guardian_id FROM session_enrolments WHERE session_id IN (SELECT session_id FROM ss)"
        "       UNION SELECT guardian_id FROM session_attendance WHERE session_id IN (SELECT session_id FROM ss))"
        " SELECT g.guardian_id, (SELECT count(*) FROM ss WHERE status = 'held') AS sessions_held,"
        " count(a.session_id) FILTER (WHERE a.attended) AS attended,"
        " count(a.session_id) FILTER (WHERE a.attended AND a.online) AS attended_online,"
        " count(a.session_id) FILTER (WHERE a.attended AND NOT a.online) AS attended_in_person"
        " FROM g LEFT JOIN session_attendance a ON a.guardian_id = g.guardian_id"
        "  AND a.session_id IN (SELECT session_id FROM ss WHERE status = 'held')"
        f"{after_sql} GROUP BY g.guardian_id ORDER BY g.guardian_id LIMIT {p.add(limit)}",
        *p,
    )
    return [dict(r) for r in rows]


async def list_guardians_with_student_in(conn: Conn, guardian_ids: list[str], path: str) -> set[str]:
    """Those of `guardian_ids` with an active student inside `path`."""
    rows = await conn.fetch(
        "SELECT DISTINCT g.guardian_id FROM guardians g JOIN students s USING (family_id) "
        f"WHERE g.guardian_id = ANY($1::text[]) AND s.active AND {scope.sql('s.org_path', 2)}",
        guardian_ids,
        *scope.args(path),
    )
    return {r["guardian_id"] for r in rows}


async def get_guardian_attendance(conn: Conn, guardian_id: str) -> dict[str, int]:
    """Held sessions the guardian was expected at (enrolled or attended) and those attended."""
    row = await conn.fetchrow(
        "SELECT count(*) AS expected, count(*) FILTER (WHERE a.attended) AS attended FROM ("
        " SELECT session_id FROM session_enrolments WHERE guardian_id = $1"
        " UNION SELECT session_id FROM session_attendance WHERE guardian_id = $1 AND attended) x "
        "JOIN parent_school_sessions s USING (session_id) "
        "LEFT JOIN session_attendance a ON a.session_id = x.session_id AND a.guardian_id = $1 "
        "WHERE s.status = 'held'",
        guardian_id,
    )
    return {"expected": row["expected"], "attended": row["attended"]}
