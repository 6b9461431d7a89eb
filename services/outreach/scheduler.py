"""Deadlines: marks overdue cases and unacknowledged referrals and escalates them one level up the org tree.

Restart-safe because all progress lives in the rows; one instance acts at a time because each tick runs under
a transaction-scoped advisory lock (and rows are taken with FOR UPDATE SKIP LOCKED besides).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.clock import Clock
from services.outreach.settings import OutreachSettings
from services.outreach.store import cases, referrals
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CaseEscalated, ReferralEscalated
from shared.db import DB_UNAVAILABLE, lock_key
from shared.outbox import add_events
from shared.web import Background, Runtime

log = logging.getLogger(__name__)


async def tick(pool: asyncpg.Pool, settings: OutreachSettings, clock: Clock) -> tuple[int, int] | None:
    """One pass: escalate what is due now; None when another instance holds the lock."""
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
        await add_events(conn, payloads)
        return len(due_cases), len(due_refs)


def make_task(clock: Clock) -> Background:
    """The background task for ServiceSpec: tick every interval (sooner while there is a backlog)."""

    async def scheduler(runtime: Runtime) -> None:
        settings = runtime.settings
        assert isinstance(settings, OutreachSettings)
        while True:
            busy = False
            try:
                done = await tick(runtime.pool, settings, clock)
                busy = done is not None and max(done) >= settings.scheduler_batch_size
            except asyncio.CancelledError:
                raise
            except DB_UNAVAILABLE as exc:
                log.warning("scheduler: database unavailable: %r", exc)
            except Exception:
                log.exception("scheduler tick failed")
            await asyncio.sleep(0 if busy else settings.scheduler_interval_seconds)

    return scheduler
