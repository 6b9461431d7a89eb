"""Notifications: the inbox, staff's email addresses and the email channel's deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from shared.db import Conn, Params, columns, fetch_page

COLUMNS = "notification_id, recipient_id, kind, case_id, referral_id, link, created_at, read_at"


async def list_carers_of_cases(conn: Conn, case_ids: Sequence[str]) -> dict[str, list[str]]:
    """Staff ids of each case's carers."""
    rows = await conn.fetch(
        "SELECT case_id, array_agg(DISTINCT staff_id) AS staff FROM case_carers WHERE case_id = ANY($1::text[])"
        " GROUP BY case_id",
        list(case_ids),
    )
    return {r["case_id"]: list(r["staff"]) for r in rows}


async def list_cases_due_between(conn: Conn, now: datetime, until: datetime, limit: int) -> list[asyncpg.Record]:
    """Open cases whose next deadline (first contact or escalation) falls in (now, until]."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT case_id, escalation_due FROM cases WHERE state <> 'closed' AND escalation_due > $1"
        " AND escalation_due <= $2 ORDER BY escalation_due, case_id LIMIT $3",
        now,
        until,
        limit,
    )
    return rows


async def insert_notifications(conn: Conn, rows: list[tuple[Any, ...]]) -> set[str]:
    """Insert (notification_id, recipient_id, kind, source_id, case_id, referral_id, link, created_at) rows, each
    with its mail queued (due at once); a row whose (source, recipient, kind) is already there is skipped, and so is
    its mail. Answers the ids of the rows skipped: none, read from the statement's count, unless some were."""
    status = await conn.execute(
        "WITH n AS (INSERT INTO notifications (notification_id, recipient_id, kind, source_id, case_id, referral_id,"
        " link, created_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
        " $6::text[], $7::text[], $8::timestamptz[]) ON CONFLICT (source_id, recipient_id, kind) DO NOTHING"
        " RETURNING notification_id, recipient_id, kind, link, created_at)"
        " INSERT INTO email_deliveries (notification_id, recipient_id, kind, link, next_attempt_at)"
        " SELECT notification_id, recipient_id, kind, link, created_at FROM n",
        *columns(rows, *range(8)),
    )
    if int(status.rsplit(" ", 1)[1]) == len(rows):
        return set()
    ids = [r[0] for r in rows]
    kept = await conn.fetch("SELECT notification_id FROM notifications WHERE notification_id = ANY($1::text[])", ids)
    return set(ids) - {r["notification_id"] for r in kept}


async def list_inbox(
    conn: Conn, recipient_id: str, unread: bool, after: tuple[Any, ...] | None, limit: int
) -> list[asyncpg.Record]:
    """A recipient's notifications, newest first, after a (created_at, notification_id) key."""
    p = Params([recipient_id])
    where = [
        "recipient_id = $1",
        *(["read_at IS NULL"] if unread else []),
        *p.conditions(("(created_at, notification_id) < ({}, {})", after)),
    ]
    select = f"SELECT {COLUMNS} FROM notifications"
    return await fetch_page(conn, select, p, where, "created_at DESC, notification_id DESC", limit)


async def update_read(conn: Conn, notification_id: str, recipient_id: str, now: datetime) -> asyncpg.Record | None:
    """Mark one of the recipient's notifications read (the first read time stays); None when it is not theirs."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "UPDATE notifications SET read_at = coalesce(read_at, $3) WHERE notification_id = $1 AND recipient_id = $2"
        f" RETURNING {COLUMNS}",
        notification_id,
        recipient_id,
        now,
    )
    return row


async def upsert_email(conn: Conn, staff_id: str, email: str, now: datetime) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        "INSERT INTO notification_emails (staff_id, email, updated_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (staff_id) DO UPDATE SET email = excluded.email, updated_at = excluded.updated_at"
        " RETURNING staff_id, email, updated_at",
        staff_id,
        email,
        now,
    )
    return row


async def get_email(conn: Conn, staff_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT staff_id, email, updated_at FROM notification_emails WHERE staff_id = $1", staff_id
    )
    return row


async def list_deliveries_due(conn: asyncpg.Connection, now: datetime, limit: int) -> list[asyncpg.Record]:
    """Pending mails whose time has come, with the recipient's address (null: none given), locked for this sender."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT d.notification_id, d.recipient_id, d.kind, d.link, d.attempts, e.email FROM email_deliveries d"
        " LEFT JOIN notification_emails e ON e.staff_id = d.recipient_id"
        " WHERE d.state = 'pending' AND d.next_attempt_at <= $1 ORDER BY d.next_attempt_at LIMIT $2"
        " FOR UPDATE OF d SKIP LOCKED",
        now,
        limit,
    )
    return rows


async def update_delivery(
    conn: asyncpg.Connection,
    notification_id: str,
    state: str,
    attempts: int,
    next_attempt_at: datetime | None,
    error: str | None,
    now: datetime,
) -> None:
    """Record a delivery's outcome: sent, no_address, failed (given up) or still pending with its next attempt."""
    await conn.execute(
        "UPDATE email_deliveries SET state = $2, attempts = $3, next_attempt_at = coalesce($4, next_attempt_at),"
        " last_error = $5, sent_at = CASE WHEN $2 = 'sent' THEN $6 ELSE sent_at END WHERE notification_id = $1",
        notification_id,
        state,
        attempts,
        next_attempt_at,
        error,
        now,
    )
