"""Deadlines: escalates overdue cases (a missed first contact or a missed review) and unacknowledged referrals one
level up the org tree, chases accepted referrals nobody resolved in time up the tree, and gives carers to cases
that found nobody when they opened.

Restart-safe because all progress lives in the rows; one instance acts at a time because each tick runs under
a transaction-scoped advisory lock (and rows are taken with FOR UPDATE SKIP LOCKED besides).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

import asyncpg
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.domain import Action, CaseState
from services.outreach.settings import OutreachSettings, Rules
from services.outreach.store import cases, directory, referrals
from services.outreach.usecases import notifications
from services.outreach.usecases.cases import case_facts
from services.outreach.usecases.referrals import referral_facts
from shared.clock import Clock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CarerAssignment, CaseAssigned, CaseEscalated, ReferralEscalated
from shared.db import try_xact_lock
from shared.web import Runtime, repeat

log = logging.getLogger(__name__)


class TickResult(NamedTuple):
    """What one scheduler pass did."""

    escalated_cases: int
    escalated_referrals: int
    assigned_cases: int
    chased_referrals: int = 0


async def tick(pool: asyncpg.Pool, settings: OutreachSettings, clock: Clock) -> TickResult | None:
    """One pass: escalate what is due now, assign waiting cases; None when another instance holds the lock."""
    rules, now, batch = settings.rules, clock.now(), settings.scheduler_batch_size
    async with pool.acquire() as conn, conn.transaction():
        if not await try_xact_lock(conn, f"scheduler:{settings.db_schema}"):
            return None
        payloads: list[BaseModel] = []
        escalated_cases = await escalate_cases(conn, rules, now, batch, payloads)
        escalated_referrals = await escalate_referrals(conn, rules, now, batch, payloads)
        assigned = await assign_waiting(conn, rules, now, batch, payloads)
        chased = await chase_referrals(conn, rules, now, batch, payloads)
        await notifications.publish(conn, [(None, payloads)])
        return TickResult(escalated_cases, escalated_referrals, assigned, chased)


async def escalate_cases(
    conn: asyncpg.Connection, rules: Rules, now: datetime, batch: int, payloads: list[BaseModel]
) -> int:
    """Cases past their first-contact, review (or escalation) deadline become overdue and go one level up."""
    due = await cases.list_cases_due(conn, now, domain.MAX_ESCALATION_LEVEL, batch)
    for c in due:
        risk = Severity(c["risk_level"])
        contacted = c["first_contacted_at"] is not None
        step = domain.escalate(rules, c["org_path"], c["escalation_level"], risk, now, contacted=contacted)
        await cases.update_case_escalated(
            conn, c["case_id"], step.level, step.escalated_to, step.reason, c["escalation_due"], now, step.next_due
        )
        payloads.append(
            CaseEscalated(
                **case_facts(c, now, overdue=domain.overdue_after(Action.ESCALATE, c["overdue"])),
                escalated_to=step.escalated_to,
                reason=step.reason,
                due_at=c["escalation_due"],
            )
        )
    return len(due)


async def escalate_referrals(
    conn: asyncpg.Connection, rules: Rules, now: datetime, batch: int, payloads: list[BaseModel]
) -> int:
    """Referrals nobody acknowledged in time go one level up, with a fresh deadline."""
    return await _referrals_past(conn, "acknowledge_by", domain.escalate_referral, rules, now, batch, payloads)


async def chase_referrals(
    conn: asyncpg.Connection, rules: Rules, now: datetime, batch: int, payloads: list[BaseModel]
) -> int:
    """Accepted referrals not resolved by their deadline are chased one level up, with a fresh deadline."""
    return await _referrals_past(conn, "resolve_by", domain.chase_referral, rules, now, batch, payloads)


async def _referrals_past(
    conn: asyncpg.Connection,
    deadline: referrals.Deadline,
    step_of: Callable[[Rules, str, int, datetime], domain.Escalation],
    rules: Rules,
    now: datetime,
    batch: int,
    payloads: list[BaseModel],
) -> int:
    due = await referrals.list_referrals_past(conn, deadline, now, domain.MAX_ESCALATION_LEVEL, batch)
    for r in due:
        step = step_of(rules, r["class_path"], r["escalation_level"], now)
        assert step.next_due is not None
        await referrals.update_referral_escalated(
            conn, deadline, r["referral_id"], step.level, step.escalated_to, step.next_due, now
        )
        payloads.append(ReferralEscalated(**referral_facts(r, now), escalated_to=step.escalated_to, reason=step.reason))
    return len(due)


async def assign_waiting(
    conn: asyncpg.Connection, rules: Rules, now: datetime, batch: int, payloads: list[BaseModel]
) -> int:
    """Give carers to open cases that found nobody when they opened (the directory copy caught up since)."""
    waiting = await cases.list_cases_waiting(conn, batch)
    if not waiting:
        return 0
    query = domain.candidate_query(rules, (c["org_path"] for c in waiting))
    pool = domain.CandidatePool(await directory.list_carer_candidates(conn, query))
    rows: list[tuple[str, str, str, str]] = []
    assigned: dict[str, CaseState] = {}
    for c in waiting:
        categories = [Category(x) for x in c["categories"]]
        roles = domain.case_carer_roles(rules, categories, Severity(c["max_severity"]))
        carers = domain.assign_carers(domain.Candidates(roles, frozenset(), c["org_path"], pool), rules)
        if not carers:
            continue
        assigned[c["case_id"]] = domain.transition(CaseState(c["state"]), Action.ASSIGN)
        rows += [(c["case_id"], x.staff_id, str(x.role), x.org_path) for x in carers]
        payloads.append(
            CaseAssigned(
                **case_facts(c, now),
                carers=[CarerAssignment(staff_id=x.staff_id, role=x.role, org_path=x.org_path) for x in carers],
            )
        )
    await cases.insert_case_carers(conn, rows, now)
    await cases.update_cases_assigned(conn, list(assigned), [str(s) for s in assigned.values()])
    return len(assigned)


async def run(runtime: Runtime) -> None:
    """The background task: tick every interval (sooner while there is a backlog), on the service's clock."""
    settings = runtime.settings
    assert isinstance(settings, OutreachSettings)

    async def step() -> bool:
        done = await tick(runtime.pool, settings, runtime.clock)
        return done is not None and max(done) >= settings.scheduler_batch_size

    await repeat("scheduler tick", step, settings.scheduler_interval_seconds)
