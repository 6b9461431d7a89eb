"""Referrals to departments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shared import scope

COLUMNS = (
    "referral_id, case_id, student_id, department, category, urgency, org_path, class_path, state, requested_at,"
    " acknowledge_by, escalation_level, escalated_to, updated_at, notes"
)


async def get(conn: asyncpg.Connection | asyncpg.Pool, referral_id: str, *, lock: bool = False) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM referrals WHERE referral_id = $1" + (" FOR UPDATE" if lock else ""), referral_id
    )
    return row


async def of_case(conn: asyncpg.Connection | asyncpg.Pool, case_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {COLUMNS} FROM referrals WHERE case_id = $1 ORDER BY requested_at, department", case_id
    )
    return rows


async def of_student_to(conn: asyncpg.Connection | asyncpg.Pool, student_id: str, department: str) -> list[Any]:
    """A child's referrals to one department that it has not declined."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {COLUMNS} FROM referrals WHERE student_id = $1 AND department = $2 AND state <> 'declined'",
        student_id,
        department,
    )
    return rows


async def list_(
    pool: asyncpg.Pool,
    *,
    department: str | None,
    org_path: str | None,
    state: str | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    """Referrals of one department and/or an org subtree, newest first."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"SELECT {COLUMNS} FROM referrals WHERE ($1::text IS NULL OR department = $1)"
        f" AND ($2::text IS NULL OR {scope.sql('org_path', 2)}) AND ($4::text IS NULL OR state = $4)"
        " ORDER BY requested_at DESC, referral_id LIMIT $5 OFFSET $6",
        department,
        None if org_path is None else scope.normalize(org_path),
        scope.like_below(org_path or ""),
        state,
        limit,
        offset,
    )
    return rows


async def transition(
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


async def due_for_escalation(conn: asyncpg.Connection, now: datetime, max_level: int, limit: int) -> list[Any]:
    """Requested referrals nobody acknowledged in time, locked; other instances skip them."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {COLUMNS} FROM referrals WHERE state = 'requested' AND acknowledge_by <= $1"
        " AND escalation_level < $2 ORDER BY acknowledge_by LIMIT $3 FOR UPDATE SKIP LOCKED",
        now,
        max_level,
        limit,
    )
    return rows


async def escalate(
    conn: asyncpg.Connection, referral_id: str, level: int, to: str, next_due: datetime, now: datetime
) -> None:
    await conn.execute(
        "UPDATE referrals SET escalation_level = $2, escalated_to = $3, acknowledge_by = $4, updated_at = $5"
        " WHERE referral_id = $1",
        referral_id,
        level,
        to,
        next_due,
        now,
    )
