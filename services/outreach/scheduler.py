"""Deadlines: marks overdue cases and unacknowledged referrals and escalates them one level up the org tree.

Restart-safe because all progress lives in the rows; one instance acts at a time because each tick runs under
a transaction-scoped advisory lock (and rows are taken with FOR UPDATE SKIP LOCKED besides).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import NamedTuple

import asyncpg
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.settings import OutreachSettings
from services.outreach.store import cases, directory, referrals
from shared.clock import Clock
from shared.contracts.common import Category, Severity, StaffRole
from shared.contracts.outreach import CarerAssignment, CaseAssigned, CaseEscalated, ReferralEscalated
from shared.db import DB_UNAVAILABLE, lock_key
from shared.outbox import add_events
from shared.web import Runtime

log = logging.getLogger(__name__)


class TickResult(NamedTuple):
    """What one scheduler pass did."""

    escalated_cases: int
    escalated_referrals: int
    assigned_cases: int


async def tick(pool: asyncpg.Pool, settings: OutreachSettings, clock: Clock) -> TickResult | None:
    """One pass: escalate what is due now, assign waiting cases; None when another instance holds the lock."""
    rules, now = settings.rules, clock.now()
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key(f"scheduler:{settings.db_schema}")):
            return None
        payloads: list[BaseModel] = []
        due_cases = await cases.due_for_escalation(
            conn, now, domain.MAX_ESCALATION_LEVEL, settings.scheduler_batch_size
        )
        for c in due_cases:
            level = c["escalation_level"] + 1
            to = domain.escalation_target(c["org_path"], level)
            risk = Severity(c["risk_level"])
            next_due = domain.next_escalation_due(rules, risk, now) if level < domain.MAX_ESCALATION_LEVEL else None
            reason = "first_contact_overdue"
            await cases.escalate(conn, c["case_id"], level, to, reason, c["escalation_due"], now, next_due)
            payloads.append(
                CaseEscalated(
                    case_id=c["case_id"],
                    student_id=c["student_id"],
                    org_path=c["org_path"],
                    risk_level=risk,
                    categories=[Category(x) for x in c["categories"]],
                    occurred_at=now,
                    escalated_to=to,
                    reason=reason,
                    due_at=c["escalation_due"],
                )
            )
        due_refs = await referrals.due_for_escalation(
            conn, now, domain.MAX_ESCALATION_LEVEL, settings.scheduler_batch_size
        )
        for r in due_refs:
            level = r["escalation_level"] + 1
            to = domain.escalation_target(r["class_path"], level)
            await referrals.escalate(
                conn, r["referral_id"], level, to, now + timedelta(days=rules.referral_ack_days), now
            )
            payloads.append(
                ReferralEscalated(
                    referral_id=r["referral_id"],
                    case_id=r["case_id"],
                    department=r["department"],
                    category=r["category"],
                    urgency=r["urgency"],
                    org_path=r["org_path"],
                    occurred_at=now,
                    escalated_to=to,
                )
            )
        assigned = await assign_waiting(conn, settings, now, payloads)
        await add_events(conn, payloads)
        return TickResult(len(due_cases), len(due_refs), assigned)


async def assign_waiting(
    conn: asyncpg.Connection, settings: OutreachSettings, now: datetime, payloads: list[BaseModel]
) -> int:
    """Give carers to open cases that found nobody when they opened (the directory copy caught up since)."""
    rules = settings.rules
    waiting = await conn.fetch(
        "SELECT case_id, student_id, org_path, risk_level, max_severity, categories FROM cases c"
        " WHERE state = 'open' AND NOT EXISTS (SELECT 1 FROM case_carers cc WHERE cc.case_id = c.case_id)"
        " ORDER BY opened_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        settings.scheduler_batch_size,
    )
    if not waiting:
        return 0
    wanted: dict[str, list[StaffRole]] = {}
    for c in waiting:
        severity = Severity(c["max_severity"])
        roles = [r for cat in c["categories"] for r in domain.carer_roles(rules, Category(cat), severity)]
        wanted[c["case_id"]] = list(dict.fromkeys(roles))
    all_roles = sorted({*rules.fallback_carer_roles, *(r for rs in wanted.values() for r in rs)})
    classes = sorted({cid for c in waiting if (cid := domain.class_of(c["org_path"]))})
    levels = sorted({lvl for c in waiting for lvl in domain.org_levels(c["org_path"])})
    staff = await directory.carer_candidates_many(conn, classes, levels, all_roles)
    done = 0
    for c in waiting:
        carers = domain.choose_carers(rules, wanted[c["case_id"]], domain.class_of(c["org_path"]), c["org_path"], staff)
        if not carers:
            continue
        await conn.execute(
            "INSERT INTO case_carers (case_id, staff_id, role, org_path, assigned_at)"
            " SELECT $1, s, r, p, $5 FROM unnest($2::text[], $3::text[], $4::text[]) AS u(s, r, p)"
            " ON CONFLICT DO NOTHING",
            c["case_id"],
            [x.staff_id for x in carers],
            [str(x.role) for x in carers],
            [x.org_path for x in carers],
            now,
        )
        await conn.execute(
            "UPDATE cases SET state = 'assigned', updated_at = clock_timestamp() WHERE case_id = $1", c["case_id"]
        )
        payloads.append(
            CaseAssigned(
                case_id=c["case_id"],
                student_id=c["student_id"],
                org_path=c["org_path"],
                risk_level=Severity(c["risk_level"]),
                categories=[Category(x) for x in c["categories"]],
                occurred_at=now,
                carers=[CarerAssignment(staff_id=x.staff_id, role=x.role, org_path=x.org_path) for x in carers],
            )
        )
        done += 1
    return done


async def run(runtime: Runtime) -> None:
    """The background task: tick every interval (sooner while there is a backlog), on the service's clock."""
    settings = runtime.settings
    assert isinstance(settings, OutreachSettings)
    while True:
        busy = False
        try:
            done = await tick(runtime.pool, settings, runtime.clock)
            busy = done is not None and max(done) >= settings.scheduler_batch_size
        except asyncio.CancelledError:
            raise
        except DB_UNAVAILABLE as exc:
            log.warning("scheduler: database unavailable: %r", exc)
        except Exception:
            log.exception("scheduler tick failed")
        await asyncio.sleep(0 if busy else settings.scheduler_interval_seconds)
