"""SQL of the cooperation structure: committees, parent schools, instructor teams, lecturers, lectures."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeAlias

import asyncpg

from shared import scope

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


def _d(row: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(row) if row else None


async def _list(conn: Conn, table: str, id_col: str, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT * FROM {table} WHERE {scope.sql('org_path', 1)} AND ($3::text IS NULL OR {id_col} > $3) "
        f"ORDER BY {id_col} LIMIT $4",
        *scope.args(path),
        after,
        limit,
    )
    return [dict(r) for r in rows]


# --- committees ----------------------------------------------------------------------------------------------


async def active_committees(conn: Conn, org_unit_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT committee_id FROM committees WHERE org_unit_id = $1 AND dissolved_on IS NULL", org_unit_id
    )
    return [r["committee_id"] for r in rows]


async def insert_committee(conn: asyncpg.Connection, c: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO committees (committee_id, org_unit_id, org_path, level, formed_on) VALUES ($1, $2, $3, $4, $5)",
        c["committee_id"],
        c["org_unit_id"],
        c["org_path"],
        c["level"],
        c["formed_on"],
    )


async def committee(conn: Conn, committee_id: str) -> dict[str, Any] | None:
    return _d(await conn.fetchrow("SELECT * FROM committees WHERE committee_id = $1", committee_id))


async def list_committees(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await _list(conn, "committees", "committee_id", path, after, limit)


async def dissolve(conn: asyncpg.Connection, committee_id: str, on: date) -> list[str]:
    """Dissolve and end every active membership; the guardian ids that left."""
    await conn.execute("UPDATE committees SET dissolved_on = $2 WHERE committee_id = $1", committee_id, on)
    rows = await conn.fetch(
        "UPDATE committee_members SET active = false, left_at = now() WHERE committee_id = $1 AND active "
        "RETURNING guardian_id",
        committee_id,
    )
    return sorted(r["guardian_id"] for r in rows)


async def members(conn: Conn, committee_id: str, with_names: bool) -> list[dict[str, Any]]:
    name = "g.name" if with_names else "NULL"
    rows = await conn.fetch(
        f"SELECT m.guardian_id, {name} AS name, m.role, m.term_start, m.term_end FROM committee_members m "
        "JOIN guardians g USING (guardian_id) WHERE m.committee_id = $1 AND m.active ORDER BY m.guardian_id",
        committee_id,
    )
    return [{k: v for k, v in dict(r).items() if with_names or k != "name"} for r in rows]


async def upsert_member(conn: asyncpg.Connection, committee_id: str, m: dict[str, Any]) -> bool:
    """Add (or re-add) a member; False when the guardian is already an active member."""
    return bool(
        await conn.fetchval(
            "INSERT INTO committee_members (committee_id, guardian_id, role, term_start, term_end) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (committee_id, guardian_id) DO UPDATE SET role = EXCLUDED.role, "
            "term_start = EXCLUDED.term_start, term_end = EXCLUDED.term_end, active = true, joined_at = now(), "
            "left_at = NULL WHERE NOT committee_members.active RETURNING true",
            committee_id,
            m["guardian_id"],
            m["role"],
            m["term_start"],
            m["term_end"],
        )
    )


async def remove_member(conn: asyncpg.Connection, committee_id: str, guardian_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "UPDATE committee_members SET active = false, left_at = now() WHERE committee_id = $1 "
            "AND guardian_id = $2 AND active RETURNING true",
            committee_id,
            guardian_id,
        )
    )


# --- parent schools --------------------------------------------------------------------------------------------


async def insert_parent_school(conn: asyncpg.Connection, p: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO parent_schools (parent_school_id, org_unit_id, org_path, kind, name) VALUES ($1, $2, $3, $4, $5)",
        p["parent_school_id"],
        p["org_unit_id"],
        p["org_path"],
        p["kind"],
        p["name"],
    )


async def parent_school(conn: Conn, parent_school_id: str) -> dict[str, Any] | None:
    return _d(await conn.fetchrow("SELECT * FROM parent_schools WHERE parent_school_id = $1", parent_school_id))


async def list_parent_schools(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await _list(conn, "parent_schools", "parent_school_id", path, after, limit)


async def insert_session(conn: asyncpg.Connection, s: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO parent_school_sessions (session_id, parent_school_id, topic, held_on, mode, speaker) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        s["session_id"],
        s["parent_school_id"],
        s["topic"],
        s["held_on"],
        s["mode"],
        s["speaker"],
    )


async def session(conn: Conn, parent_school_id: str, session_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT s.*, "
        "(SELECT count(*) FROM session_enrolments e WHERE e.session_id = s.session_id) AS enrolled, "
        "(SELECT count(*) FROM session_attendance a WHERE a.session_id = s.session_id AND a.attended) AS attended, "
        "(SELECT count(*) FROM (SELECT guardian_id FROM session_enrolments e WHERE e.session_id = s.session_id "
        " UNION SELECT guardian_id FROM session_attendance a WHERE a.session_id = s.session_id AND a.attended) x) "
        "AS expected "
        "FROM parent_school_sessions s WHERE s.session_id = $1 AND s.parent_school_id = $2",
        session_id,
        parent_school_id,
    )
    return _d(row)


async def sessions(conn: Conn, parent_school_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT session_id, topic, held_on, mode, speaker, status FROM parent_school_sessions "
        "WHERE parent_school_id = $1 ORDER BY held_on, session_id",
        parent_school_id,
    )
    return [dict(r) for r in rows]


async def enrol(conn: asyncpg.Connection, session_id: str, guardian_ids: list[str]) -> int:
    rows = await conn.fetch(
        "INSERT INTO session_enrolments (session_id, guardian_id) SELECT $1, unnest($2::text[]) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        session_id,
        guardian_ids,
    )
    return len(rows)


async def mark_held(conn: asyncpg.Connection, session_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "UPDATE parent_school_sessions SET status = 'held' WHERE session_id = $1 AND status = 'scheduled' "
            "RETURNING true",
            session_id,
        )
    )


async def record_attendance(conn: asyncpg.Connection, session_id: str, records: list[tuple[str, bool]]) -> list[str]:
    """Upsert attendance; the guardian ids whose record is new or changed."""
    rows = await conn.fetch(
        "INSERT INTO session_attendance (session_id, guardian_id, attended) "
        "SELECT $1, g, a FROM unnest($2::text[], $3::boolean[]) AS t(g, a) "
        "ON CONFLICT (session_id, guardian_id) DO UPDATE SET attended = EXCLUDED.attended, recorded_at = now() "
        "WHERE session_attendance.attended IS DISTINCT FROM EXCLUDED.attended RETURNING guardian_id",
        session_id,
        [g for g, _ in records],
        [a for _, a in records],
    )
    return [r["guardian_id"] for r in rows]


async def guardians_in(conn: Conn, guardian_ids: list[str], path: str) -> set[str]:
    """Those of `guardian_ids` with an active student inside `path`."""
    rows = await conn.fetch(
        "SELECT DISTINCT g.guardian_id FROM guardians g JOIN students s USING (family_id) "
        f"WHERE g.guardian_id = ANY($1::text[]) AND s.active AND {scope.sql('s.org_path', 2)}",
        guardian_ids,
        *scope.args(path),
    )
    return {r["guardian_id"] for r in rows}


async def guardian_attendance(conn: Conn, guardian_id: str) -> dict[str, int]:
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


# --- instructor teams, lecturers, lectures ---------------------------------------------------------------------


async def insert_team(conn: asyncpg.Connection, t: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO instructor_teams (team_id, org_unit_id, org_path, name) VALUES ($1, $2, $3, $4)",
        t["team_id"],
        t["org_unit_id"],
        t["org_path"],
        t["name"],
    )


async def team(conn: Conn, team_id: str) -> dict[str, Any] | None:
    row = _d(await conn.fetchrow("SELECT * FROM instructor_teams WHERE team_id = $1", team_id))
    if row is not None:
        row["members"] = [
            dict(r)
            for r in await conn.fetch(
                "SELECT member_id, staff_id, name, role, is_lead FROM team_members WHERE team_id = $1 AND active "
                "ORDER BY member_id",
                team_id,
            )
        ]
    return row


async def list_teams(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await _list(conn, "instructor_teams", "team_id", path, after, limit)


async def insert_team_member(conn: asyncpg.Connection, m: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO team_members (member_id, team_id, staff_id, name, role, is_lead) VALUES ($1, $2, $3, $4, $5, $6)",
        m["member_id"],
        m["team_id"],
        m["staff_id"],
        m["name"],
        m["role"],
        m["is_lead"],
    )


async def remove_team_member(conn: asyncpg.Connection, team_id: str, member_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "UPDATE team_members SET active = false WHERE team_id = $1 AND member_id = $2 AND active RETURNING true",
            team_id,
            member_id,
        )
    )


async def insert_lecturer(conn: asyncpg.Connection, lec: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO lecturers (lecturer_id, org_unit_id, org_path, staff_id, name) VALUES ($1, $2, $3, $4, $5)",
        lec["lecturer_id"],
        lec["org_unit_id"],
        lec["org_path"],
        lec["staff_id"],
        lec["name"],
    )


async def lecturer(conn: Conn, lecturer_id: str) -> dict[str, Any] | None:
    return _d(await conn.fetchrow("SELECT * FROM lecturers WHERE lecturer_id = $1", lecturer_id))


async def list_lecturers(conn: Conn, path: str, after: str | None, limit: int) -> list[dict[str, Any]]:
    return await _list(conn, "lecturers", "lecturer_id", path, after, limit)


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
    return await _list(conn, "lectures", "lecture_id", path, after, limit)


async def unit_paths(conn: Conn, ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch("SELECT org_unit_id, org_path FROM org_units WHERE org_unit_id = ANY($1::text[])", ids)
    return {r["org_unit_id"]: r["org_path"] for r in rows}
