"""The audit log of detail reads."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from shared import context
from shared.auth import Principal


async def record(
    conn: asyncpg.Connection | asyncpg.Pool,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_id: str,
    student_id: str | None,
) -> None:
    """Write who read what, in which role, when."""
    ctx = context.current()
    await conn.execute(
        "INSERT INTO audit_log (subject, roles, department, org_path, action, resource_type, resource_id, student_id,"
        " request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        principal.subject,
        sorted(str(r) for r in principal.roles),
        principal.department,
        principal.org_path,
        action,
        resource_type,
        resource_id,
        student_id,
        ctx.request_id if ctx else None,
    )


async def query(
    pool: asyncpg.Pool,
    *,
    resource_type: str | None,
    resource_id: str | None,
    subject: str | None,
    student_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, at, subject, roles, department, org_path, action, resource_type, resource_id, student_id,"
        " request_id FROM audit_log WHERE ($1::text IS NULL OR resource_type = $1)"
        " AND ($2::text IS NULL OR resource_id = $2) AND ($3::text IS NULL OR subject = $3)"
        " AND ($4::text IS NULL OR student_id = $4) AND ($5::timestamptz IS NULL OR at >= $5)"
        " AND ($6::timestamptz IS NULL OR at < $6) ORDER BY id DESC LIMIT $7 OFFSET $8",
        resource_type,
        resource_id,
        subject,
        student_id,
        since,
        until,
        limit,
        offset,
    )
    return rows
