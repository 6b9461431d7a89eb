"""SQL of the set-based reaction to findings: a handful of statements whatever the batch size."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shared.db import columns

# The children's current (or latest closed) cases, locked, with their carers.
CONTEXT = """
SELECT s.student_id, c.case_id, c.org_path, c.state, c.max_severity, c.categories, c.contact_due,
       c.escalation_due, c.closed_at, c.finding_recorded_at, c.overdue,
       (SELECT coalesce(json_agg(json_build_object('staff_id', staff_id, 'role', role, 'org_path', org_path)
                                 ORDER BY assigned_at, role, staff_id), '[]')
          FROM case_carers cc WHERE cc.case_id = c.case_id) AS carers
  FROM unnest($1::text[]) AS s(student_id)
  LEFT JOIN LATERAL (
      SELECT * FROM cases WHERE student_id = s.student_id
       ORDER BY (state <> 'closed') DESC, opened_at DESC LIMIT 1 FOR UPDATE
  ) c ON true
"""


async def list_seen_findings(conn: asyncpg.Connection, finding_ids: list[str]) -> set[str]:
    """Which of these findings were applied before (by any consumer group)."""
    rows = await conn.fetch("SELECT finding_id FROM case_findings WHERE finding_id = ANY($1)", finding_ids)
    return {r["finding_id"] for r in rows}


async def list_case_context(conn: asyncpg.Connection, student_ids: list[str]) -> list[asyncpg.Record]:
    """Lock and read the children's cases; pass the ids sorted so concurrent batches lock in one order."""
    rows: list[asyncpg.Record] = await conn.fetch(CONTEXT, student_ids)
    return rows


def _cats(row: dict[str, Any]) -> str:
    return ",".join(row["categories"])


async def insert_cases(conn: asyncpg.Connection, rows: list[dict[str, Any]], now: datetime) -> int:
    """Insert new open cases; returns how many went in (fewer when another transaction opened one first)."""
    if not rows:
        return 0
    inserted = await conn.fetch(
        "INSERT INTO cases (case_id, student_id, org_path, state, risk_level, max_severity, categories,"
        " opened_at, finding_recorded_at, contact_due, escalation_due)"
        " SELECT c, s, p, st, r, m, string_to_array(cats, ','), $8::timestamptz, fr, due, esc"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        "             $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])"
        "      AS u(c, s, p, st, r, m, cats, fr, due, esc)"
        " ON CONFLICT (student_id) WHERE state <> 'closed' DO NOTHING RETURNING case_id",
        *columns(rows, "case_id", "student_id", "org_path", "state", "risk_level", "max_severity"),
        [_cats(r) for r in rows],
        now,
        *columns(rows, "finding_recorded_at", "contact_due", "escalation_due"),
    )
    return len(inserted)


async def update_cases(conn: asyncpg.Connection, rows: list[dict[str, Any]], now: datetime) -> None:
    """Apply joined or reopening findings to existing cases (a reopen clears closure and escalation)."""
    if not rows:
        return
    await conn.execute(
        "UPDATE cases c SET state = u.st, risk_level = u.r, max_severity = u.m,"
        " categories = string_to_array(u.cats, ','), contact_due = u.due, escalation_due = u.esc,"
        " org_path = u.p, overdue = c.overdue AND NOT u.re,"
        " escalation_level = CASE WHEN u.re THEN 0 ELSE c.escalation_level END,"
        " escalated_to = CASE WHEN u.re THEN NULL ELSE c.escalated_to END,"
        " reopened_at = CASE WHEN u.re THEN $10 ELSE c.reopened_at END,"
        " closed_at = CASE WHEN u.re THEN NULL ELSE c.closed_at END,"
        " finding_recorded_at = CASE WHEN u.re THEN u.fr ELSE c.finding_recorded_at END,"
        " updated_at = clock_timestamp()"
        " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],"
        "             $7::timestamptz[], $8::text[], $9::boolean[], $11::timestamptz[])"
        "      AS u(c, st, r, m, cats, due, esc, p, re, fr)"
        " WHERE c.case_id = u.c",
        *columns(rows, "case_id", "state", "risk_level", "max_severity"),
        [_cats(r) for r in rows],
        *columns(rows, "contact_due", "escalation_due", "org_path", "reopen"),
        now,
        [r["finding_recorded_at"] for r in rows],
    )


async def insert_case_findings(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Record the applied findings in one statement: (finding_id, case_id, student_id, visit_id, teacher_id, category,
    severity, recorded_at, effect); a finding id applied concurrently elsewhere raises a unique violation."""
    if rows:
        await conn.execute(
            "INSERT INTO case_findings (finding_id, case_id, student_id, visit_id, teacher_id, category, severity,"
            " recorded_at, effect) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
            " $6::text[], $7::text[], $8::timestamptz[], $9::text[])",
            *columns(rows, *range(9)),
        )
