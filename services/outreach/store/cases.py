"""Care cases: reads, contacts, state changes, closure, escalation (the reaction's set-based SQL: findings.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shared import scope
from shared.db import Conn, Params, columns, fetch_page, insert_row

CASE_COLUMNS = (
    "case_id, student_id, org_path, state, risk_level, max_severity, categories, opened_at, reopened_at,"
    " finding_recorded_at, contact_due, first_contacted_at, last_contacted_at, next_review_at, escalation_level,"
    " escalation_due, escalated_to, escalated_at, overdue, closed_at, close_reason, closed_by_role, committed_at,"
    " updated_at, version"
)

# Whether a case's closure waits for a second person's decision (`c` is the cases row).
PENDING = "EXISTS (SELECT 1 FROM case_closure_proposals p WHERE p.case_id = c.case_id AND p.decision IS NULL)"


async def list_case_carers(conn: asyncpg.Connection, case_id: str) -> list[asyncpg.Record]:
    return await _of_case(conn, "staff_id, role, org_path, assigned_at", "case_carers", "assigned_at, role", case_id)


async def get_case(conn: Conn, case_id: str, *, lock: bool = False) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"SELECT {CASE_COLUMNS} FROM cases WHERE case_id = $1" + (" FOR UPDATE" if lock else ""), case_id
    )
    return row


async def list_cases(
    pool: asyncpg.Pool,
    *,
    org_path: str,
    carer_staff_id: str | None,
    state: str | None,
    risk_level: str | None,
    overdue: bool | None,
    student_id: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
    closure_pending: bool | None = None,
) -> list[asyncpg.Record]:
    """Cases under an org subtree (or of one carer), newest first, after the key (opened_at, case_id) when given."""
    p = Params(scope.args(org_path))
    where = [
        scope.sql("c.org_path", 1),
        *p.conditions(
            (f"{PENDING} = {{}}", closure_pending),
            ("EXISTS (SELECT 1 FROM case_carers cc WHERE cc.case_id = c.case_id AND cc.staff_id = {})", carer_staff_id),
            ("c.state = {}", state),
            ("c.risk_level = {}", risk_level),
            ("c.overdue = {}", overdue),
            ("c.student_id = {}", student_id),
            ("(c.opened_at, c.case_id) < ({}, {})", after),
        ),
    ]
    select = f"SELECT {CASE_COLUMNS}, {PENDING} AS closure_pending FROM cases c"
    return await fetch_page(pool, select, p, where, "c.opened_at DESC, c.case_id DESC", limit)


async def _of_case(conn: Conn, columns: str, table: str, order: str, case_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {columns} FROM {table} WHERE case_id = $1 ORDER BY {order}", case_id
    )
    return rows


async def list_case_findings(conn: Conn, case_id: str) -> list[asyncpg.Record]:
    columns = "finding_id, visit_id, teacher_id, category, severity, recorded_at, effect, applied_at"
    return await _of_case(conn, columns, "case_findings", "recorded_at, finding_id", case_id)


async def list_case_contacts(conn: Conn, case_id: str) -> list[asyncpg.Record]:
    columns = "contact_id, contacted_at, mode, staff_id, outcome, next_review_at, logged_at"
    return await _of_case(conn, columns, "case_contacts", "contacted_at, contact_id", case_id)


async def list_case_escalations(conn: Conn, case_id: str) -> list[asyncpg.Record]:
    columns = "level, escalated_to, reason, due_at, escalated_at"
    return await _of_case(conn, columns, "case_escalations", "escalated_at, level", case_id)


CONTACT_COLUMNS = tuple("contact_id case_id contacted_at mode staff_id logged_by outcome next_review_at".split())


async def insert_contact(conn: asyncpg.Connection, case_id: str, c: dict[str, Any]) -> None:
    """Log a contact with the child or family."""
    await insert_row(conn, "case_contacts", CONTACT_COLUMNS, {**c, "case_id": case_id})


async def update_case_contacted(
    conn: asyncpg.Connection, case_id: str, state: str, contacted_at: datetime, next_review_at: datetime
) -> None:
    """A contact was logged: the contact deadline and overdue are cleared, the next review becomes the deadline the
    scheduler watches (from level 0 again), the case takes its new state."""
    await conn.execute(
        "UPDATE cases SET first_contacted_at = coalesce(first_contacted_at, $2),"
        " last_contacted_at = greatest(last_contacted_at, $2), contact_due = NULL, escalation_due = $3,"
        " escalation_level = 0, overdue = false, next_review_at = $3, state = $4,"
        " updated_at = clock_timestamp()"
        " WHERE case_id = $1",
        case_id,
        contacted_at,
        next_review_at,
        state,
    )


async def update_case_state(conn: asyncpg.Connection, case_id: str, state: str) -> int:
    """Move the case to `state`; its new version."""
    version: int = await conn.fetchval(
        "UPDATE cases SET state = $2, updated_at = clock_timestamp() WHERE case_id = $1 RETURNING version",
        case_id,
        state,
    )
    return version


async def update_case_closed(conn: asyncpg.Connection, case_id: str, state: str, c: dict[str, Any]) -> None:
    """Close a case: its deadlines and overdue end with it."""
    await conn.execute(
        "UPDATE cases SET state = $7, closed_at = $2, close_reason = $3, close_note = $4, closed_by = $5,"
        " closed_by_role = $6, contact_due = NULL, escalation_due = NULL, overdue = false,"
        " updated_at = clock_timestamp() WHERE case_id = $1",
        case_id,
        c["closed_at"],
        c["reason_code"],
        c["note"],
        c["closed_by"],
        c["closed_by_role"],
        state,
    )


async def list_cases_due(conn: asyncpg.Connection, now: datetime, max_level: int, limit: int) -> list[Any]:
    """Open cases past their contact (or escalation) deadline, locked; other instances skip them."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {CASE_COLUMNS} FROM cases WHERE state <> 'closed' AND escalation_due <= $1"
        " AND escalation_level < $2 ORDER BY escalation_due LIMIT $3 FOR UPDATE SKIP LOCKED",
        now,
        max_level,
        limit,
    )
    return rows


async def update_case_escalated(
    conn: asyncpg.Connection,
    case_id: str,
    level: int,
    to: str,
    reason: str,
    due_at: datetime,
    now: datetime,
    next_due: datetime | None,
) -> None:
    """Mark a case overdue, hand it one level up and record the step."""
    await conn.execute(
        "UPDATE cases SET overdue = true, escalation_level = $2, escalated_to = $3, escalated_at = $4,"
        " escalation_due = $5, updated_at = clock_timestamp() WHERE case_id = $1",
        case_id,
        level,
        to,
        now,
        next_due,
    )
    await conn.execute(
        "INSERT INTO case_escalations VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        case_id,
        level,
        to,
        reason,
        due_at,
        now,
    )


async def list_open_cases_of_staff(conn: asyncpg.Connection, staff_ids: list[str]) -> list[asyncpg.Record]:
    """Open cases some staff members care for, locked in case order (a leaver's cases to hand over)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {CASE_COLUMNS} FROM cases c WHERE state <> 'closed'"
        " AND EXISTS (SELECT 1 FROM case_carers cc WHERE cc.case_id = c.case_id AND cc.staff_id = ANY($1))"
        " ORDER BY case_id FOR UPDATE",
        staff_ids,
    )
    return rows


async def list_carers_of_cases(conn: asyncpg.Connection, case_ids: list[str]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT case_id, staff_id, role, org_path FROM case_carers WHERE case_id = ANY($1)"
        " ORDER BY case_id, assigned_at, role",
        case_ids,
    )
    return rows


async def delete_case_carers(conn: asyncpg.Connection, case_ids: list[str], staff_ids: list[str]) -> None:
    """Some staff members stop caring for some cases (they left)."""
    await conn.execute("DELETE FROM case_carers WHERE case_id = ANY($1) AND staff_id = ANY($2)", case_ids, staff_ids)


async def get_pending_closure(conn: asyncpg.Connection, case_id: str) -> asyncpg.Record | None:
    """The closure proposal of a case that waits for a decision, if any."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT proposal_id, reason_code, note, proposed_by, proposed_by_staff_id, proposed_by_role, proposed_at"
        " FROM case_closure_proposals WHERE case_id = $1 AND decision IS NULL",
        case_id,
    )
    return row


CLOSURE_PROPOSAL_COLUMNS = tuple(
    "proposal_id case_id reason_code note proposed_by proposed_by_staff_id proposed_by_role proposed_at".split()
)


async def insert_closure_proposal(conn: asyncpg.Connection, case_id: str, p: dict[str, Any]) -> None:
    await insert_row(conn, "case_closure_proposals", CLOSURE_PROPOSAL_COLUMNS, {**p, "case_id": case_id})


async def update_closure_decision(conn: asyncpg.Connection, proposal_id: str, d: dict[str, Any]) -> None:
    await conn.execute(
        "UPDATE case_closure_proposals SET decision = $2, decided_by = $3, decided_by_role = $4, decided_at = $5,"
        " decision_note = $6 WHERE proposal_id = $1 AND decision IS NULL",
        proposal_id,
        d["decision"],
        d["decided_by"],
        d["decided_by_role"],
        d["decided_at"],
        d["note"],
    )


async def get_case_carer(conn: Conn, case_id: str, staff_id: str) -> bool:
    """Whether a staff member is one of a case's carers."""
    found: bool | None = await conn.fetchval(
        "SELECT true FROM case_carers WHERE case_id = $1 AND staff_id = $2 LIMIT 1", case_id, staff_id
    )
    return bool(found)


async def list_cases_waiting(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Open cases that found no carer when they opened, oldest first, locked; other instances skip them."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"SELECT {CASE_COLUMNS} FROM cases c WHERE state = 'open'"
        " AND NOT EXISTS (SELECT 1 FROM case_carers cc WHERE cc.case_id = c.case_id)"
        " ORDER BY opened_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    return rows


async def insert_case_carers(conn: asyncpg.Connection, rows: list[tuple[str, str, str, str]], now: datetime) -> None:
    """Assign carers: (case_id, staff_id, role, org_path); an assignment already there is kept."""
    if rows:
        await conn.execute(
            "INSERT INTO case_carers (case_id, staff_id, role, org_path, assigned_at)"
            " SELECT *, $5::timestamptz FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
            " ON CONFLICT DO NOTHING",
            *columns(rows, 0, 1, 2, 3),
            now,
        )


async def update_cases_assigned(conn: asyncpg.Connection, case_ids: list[str], states: list[str]) -> None:
    """Cases that got carers take their new state."""
    if case_ids:
        await conn.execute(
            "UPDATE cases c SET state = u.st, updated_at = clock_timestamp()"
            " FROM unnest($1::text[], $2::text[]) AS u(c, st) WHERE c.case_id = u.c",
            case_ids,
            states,
        )
