"""Referrals to departments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import asyncpg

from shared import scope
from shared.db import Conn, Params, fetch_page

COLUMNS = (
    "referral_id, case_id, student_id, department, category, urgency, org_path, class_path, state, requested_at,"
    " acknowledge_by, resolve_by, escalation_level, escalated_to, updated_at, notes, version"
)


async def get_referral(conn: Conn, referral_id: str, *, lock: bool = False) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM referrals WHERE referral_id = $1" + (" FOR UPDATE" if lock else ""), referral_id
    )
    return row


async def list_case_referrals(conn: Conn, case_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {COLUMNS} FROM referrals WHERE case_id = $1 ORDER BY requested_at, department", case_id
    )
    return rows


async def list_student_referrals(conn: Conn, student_id: str, department: str) -> list[Any]:
    """A child's referrals to one department that it has not declined."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {COLUMNS} FROM referrals WHERE student_id = $1 AND department = $2 AND state <> 'declined'",
        student_id,
        department,
    )
    return rows


async def list_referrals(
    pool: asyncpg.Pool,
    *,
    department: str | None,
    org_path: str | None,
    state: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Referrals of one department and/or an org subtree, newest first, after the key (requested_at, referral_id)
    when given."""
    p = Params(scope.args(org_path) if org_path is not None else ())
    where = [
        *([scope.sql("org_path", 1)] if org_path is not None else []),
        *p.conditions(
            ("department = {}", department), ("state = {}", state), ("(requested_at, referral_id) < ({}, {})", after)
        ),
    ]
    return await fetch_page(
        pool, f"SELECT {COLUMNS} FROM referrals", p, where, "requested_at DESC, referral_id DESC", limit
    )


async def update_referral_state(
    conn: asyncpg.Connection, referral_id: str, state: str, note: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        "UPDATE referrals SET state = $2, updated_at = $4, notes = notes || jsonb_build_array($3::jsonb)"
        " WHERE referral_id = $1",
        referral_id,
        state,
        note,
        now,
    )


async def update_referral_accepted(conn: asyncpg.Connection, referral_id: str, resolve_by: datetime) -> None:
    """An accepted referral's resolution deadline; the acknowledgement's escalations are behind it (level 0)."""
    await conn.execute(
        "UPDATE referrals SET resolve_by = $2, escalation_level = 0 WHERE referral_id = $1", referral_id, resolve_by
    )


REFERRAL_KEYS = (
    "referral_id",
    "case_id",
    "student_id",
    "department",
    "category",
    "urgency",
    "org_path",
    "class_path",
    "requested_at",
    "acknowledge_by",
)


async def insert_referrals(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> list[asyncpg.Record]:
    """Insert referrals; one already open for the same case, department and category is not asked twice."""
    if not rows:
        return []
    created: list[asyncpg.Record] = await conn.fetch(
        "INSERT INTO referrals (referral_id, case_id, student_id, department, category, urgency, org_path,"
        " class_path, state, requested_at, acknowledge_by, updated_at)"
        " SELECT r, c, s, d, cat, u, p, cp, 'requested', req, ack, req"
        "   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        "               $8::text[], $9::timestamptz[], $10::timestamptz[]) AS x(r, c, s, d, cat, u, p, cp, req, ack)"
        " ON CONFLICT (case_id, department, category) WHERE state IN ('requested', 'acknowledged', 'accepted')"
        " DO NOTHING RETURNING referral_id, case_id, department, category, urgency, org_path, requested_at,"
        " acknowledge_by",
        *[[r[k] for r in rows] for k in REFERRAL_KEYS],
    )
    return created


# A referral's two deadlines (the column), each in the state it belongs to: acknowledging a request, resolving an
# accepted one.
Deadline = Literal["acknowledge_by", "resolve_by"]
_STATE_OF: dict[Deadline, str] = {"acknowledge_by": "requested", "resolve_by": "accepted"}


async def list_referrals_past(
    conn: asyncpg.Connection, deadline: Deadline, now: datetime, max_level: int, limit: int
) -> list[asyncpg.Record]:
    """Referrals past `deadline` in its state, below the top level, locked; other instances skip them."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {COLUMNS} FROM referrals WHERE state = $4 AND {deadline} <= $1"
        f" AND escalation_level < $2 ORDER BY {deadline} LIMIT $3 FOR UPDATE SKIP LOCKED",
        now,
        max_level,
        limit,
        _STATE_OF[deadline],
    )
    return rows


async def update_referral_escalated(
    conn: asyncpg.Connection,
    deadline: Deadline,
    referral_id: str,
    level: int,
    to: str,
    next_due: datetime,
    now: datetime,
) -> None:
    """A referral gone one level up past `deadline`, which starts again at `next_due`."""
    assert deadline in _STATE_OF  # a column name in the statement: only the two deadlines
    await conn.execute(
        f"UPDATE referrals SET escalation_level = $2, escalated_to = $3, {deadline} = $4, updated_at = $5"
        " WHERE referral_id = $1",
        referral_id,
        level,
        to,
        next_due,
        now,
    )
