"""The reaction to findings, set-based: a whole batch of findings in a handful of SQL statements.

One code path serves both the kit's batch consumer and its record-by-record redo of a failed batch (a batch of
one), so the rules are applied the same way whichever path a record takes. One open case per child holds because
(a) the child's case rows are locked before anything is decided, (b) a partial unique index refuses a second open
case (a race ends in `CaseRace`, and the work is redone with the winner's case in view), and (c) every finding id is
recorded once, so redelivery, a fresh consumer group or a full replay changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.domain import Action, Case, CaseState, Effect
from services.outreach.settings import Rules
from services.outreach.store import cases, directory, groups
from services.outreach.store import findings as sql
from services.outreach.usecases import notifications
from services.outreach.usecases.groups import registered
from services.outreach.usecases.referrals import referral_row, request_referrals
from shared.clock import Clock
from shared.context import TraceContext
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import (
    CarerAssignment,
    CaseAssigned,
    CaseJoined,
    CaseOpened,
    CaseReopened,
    GroupSource,
)
from shared.contracts.visits import FindingRecorded
from shared.events import Event
from shared.ids import new_id


class CaseRace(Exception):
    """Another transaction opened a child's case between our read and our insert."""


@dataclass
class _Child:
    """A child's case while a batch is applied, and what must be written for it."""

    case: Case | None
    new: bool = False
    reopen: bool = False
    dirty: bool = False


def _case(r: asyncpg.Record) -> Case | None:
    """The child's current (or latest closed) case as the domain sees it."""
    if r["case_id"] is None:
        return None
    return Case(
        case_id=r["case_id"],
        org_path=r["org_path"],
        state=CaseState(r["state"]),
        max_severity=Severity(r["max_severity"]),
        categories=tuple(Category(c) for c in r["categories"]),
        contact_due=r["contact_due"],
        escalation_due=r["escalation_due"],
        closed_at=r["closed_at"],
        finding_recorded_at=r["finding_recorded_at"],
        overdue=r["overdue"],
        carers=tuple(CarerAssignment.model_validate(c) for c in r["carers"]),
    )


@dataclass
class _Writes:
    """What a batch of findings must write, gathered finding by finding and written set-based at the end."""

    caused: defaultdict[str, list[BaseModel]] = field(default_factory=lambda: defaultdict(list))  # finding id → events
    applied: list[tuple[str, FindingRecorded, str]] = field(default_factory=list)  # (case id, finding, effect)
    new_carers: list[tuple[str, str, str, str]] = field(default_factory=list)
    memberships: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    referred_by: dict[str, str] = field(default_factory=dict)  # referral id → finding id


async def _unseen(conn: asyncpg.Connection, findings: list[FindingRecorded]) -> list[FindingRecorded]:
    """The batch's findings, once each, without those already applied (redelivery and replay change nothing)."""
    unique: dict[str, FindingRecorded] = {}
    for f in findings:
        unique.setdefault(f.finding_id, f)
    seen = await sql.list_seen_findings(conn, list(unique))
    return [f for f in unique.values() if f.finding_id not in seen]


def _case_events(
    decision: domain.Decision, case: Case, f: FindingRecorded, assigned: bool, risk: Severity, now: datetime
) -> list[BaseModel]:
    """The events of one decision: opened, reopened or joined (with the first-contact deadline), then assigned."""
    facts: dict[str, Any] = {
        "case_id": case.case_id,
        "student_id": f.student_id,
        "org_path": case.org_path,
        "risk_level": risk,
        "categories": list(case.categories),
        "occurred_at": now,
        "overdue": case.overdue,
    }
    due = decision.first_contact_due
    assert due is not None
    events: list[BaseModel] = []
    if decision.effect == Effect.OPENED:
        events.append(
            CaseOpened(**facts, finding_id=f.finding_id, first_contact_due=due, finding_recorded_at=f.recorded_at)
        )
    elif decision.effect == Effect.REOPENED:
        events.append(CaseReopened(**facts, finding_id=f.finding_id, first_contact_due=due))
    else:
        events.append(CaseJoined(**facts, finding_id=f.finding_id, first_contact_due=due))
    if assigned:
        events.append(CaseAssigned(**facts, carers=list(case.carers)))
    return events


class Reaction:
    """Applies findings to care cases."""

    def __init__(self, rules: Rules, clock: Clock) -> None:
        self.rules = rules
        self.clock = clock

    async def on_findings(self, conn: asyncpg.Connection, events: list[Event[FindingRecorded]]) -> None:
        """The kit's batch handler: a lane's findings at once, redone if it lost a race to open a child's case."""
        for _ in range(3):
            try:
                async with conn.transaction():  # a savepoint: a lost race leaves nothing behind
                    causes = {e.payload.finding_id: e.trace for e in events}
                    await self.apply(conn, [e.payload for e in events], causes)
                return
            except CaseRace:
                continue
        raise RuntimeError(f"could not settle the cases of {len(events)} findings")

    async def apply(
        self,
        conn: asyncpg.Connection,
        findings: list[FindingRecorded],
        causes: Mapping[str, TraceContext | None] | None = None,
    ) -> None:
        """Open, join or reopen each child's case (`domain.decide`); assign carers, register groups, ask departments.

        The events go out under the trace of the finding that caused each (`causes`, by finding id: the consumed
        events' contexts), so one trace shows a visit, its findings and what each set going.
        """
        now = self.clock.now()
        todo = await _unseen(conn, findings)
        if not todo:
            return
        students = sorted({f.student_id for f in todo})  # a fixed lock order: no deadlocks between batches
        children = {r["student_id"]: _Child(_case(r)) for r in await sql.list_case_context(conn, students)}
        query = domain.candidate_query(self.rules, (f.org_path for f in todo))
        pool = domain.CandidatePool(await directory.list_carer_candidates(conn, query))
        out = _Writes()
        for f in todo:
            self._react(children[f.student_id], f, pool, now, out)
        await self._write(conn, children, out, now, causes or {})

    def _react(
        self, child: _Child, f: FindingRecorded, pool: domain.CandidatePool, now: datetime, out: _Writes
    ) -> None:
        """One finding: the decision on the child's case, its carers, and the events and rows that follow."""
        rules = self.rules
        decision = domain.decide(child.case, f, rules, now)
        if decision.effect == Effect.IGNORED or decision.case is None:
            return
        case = decision.case
        child.new = child.new or decision.effect == Effect.OPENED
        child.reopen = child.reopen or decision.effect == Effect.REOPENED
        held = frozenset(c.role for c in case.carers)
        wanted = domain.Candidates(domain.carer_roles(rules, f.category, f.severity), held, f.org_path, pool)
        chosen = [
            CarerAssignment(staff_id=c.staff_id, role=c.role, org_path=c.org_path)
            for c in domain.assign_carers(wanted, rules)
        ]
        carers = case.carers + tuple(chosen)
        case = replace(  # an opened case gets its id here; any carer moves it to assigned (`domain.transition`)
            case,
            case_id=new_id() if decision.effect == Effect.OPENED else case.case_id,
            carers=carers,
            state=domain.transition(case.state, Action.ASSIGN) if carers else case.state,
        )
        child.case, child.dirty = case, True
        out.new_carers += [(case.case_id, c.staff_id, str(c.role), c.org_path) for c in chosen]
        out.caused[f.finding_id] += _case_events(decision, case, f, bool(chosen), case.risk(rules), now)
        out.applied.append((case.case_id, f, str(decision.effect)))
        group = domain.special_group(rules, f.category)
        if group is not None:
            out.memberships.setdefault((f.student_id, str(group)), (new_id(), f.org_path, f.finding_id))
        for dept in domain.referral_departments(rules, f.category, f.severity):
            row = referral_row(rules, case.case_id, f.student_id, f.org_path, dept, f.category, f.severity, now)
            out.referrals.append(row)
            out.referred_by[row["referral_id"]] = f.finding_id

    async def _write(
        self,
        conn: asyncpg.Connection,
        children: dict[str, _Child],
        out: _Writes,
        now: datetime,
        causes: Mapping[str, TraceContext | None],
    ) -> None:
        """A batch's rows and events, set-based; cases first: a lost race is found before anything else is written."""
        new = [self._row(sid, c) for sid, c in children.items() if c.new]
        if await sql.insert_cases(conn, new, now) != len(new):
            raise CaseRace("a child's case was opened concurrently")
        await sql.update_cases(conn, [self._row(sid, c) for sid, c in children.items() if c.dirty and not c.new], now)
        await sql.insert_case_findings(
            conn,
            [
                (f.finding_id, cid, f.student_id, f.visit_id, f.teacher_id, f.category, f.severity, f.recorded_at, e)
                for cid, f, e in out.applied
            ],
        )
        await cases.insert_case_carers(conn, out.new_carers, now)
        joined = [(m, s, g, p) for (s, g), (m, p, _) in out.memberships.items()]
        for r in await groups.insert_memberships(conn, joined, GroupSource.VISIT_FINDING, now):
            out.caused[out.memberships[(r["student_id"], r["group"])][2]].append(registered(r, now))
        for referral in await request_referrals(conn, out.referrals):
            out.caused[out.referred_by[referral.referral_id]].append(referral)
        await notifications.publish(conn, [(causes.get(fid), events) for fid, events in out.caused.items()])

    def _row(self, student_id: str, child: _Child) -> dict[str, Any]:
        """A child's case as the columns the store writes."""
        c = child.case
        assert c is not None
        return {
            "case_id": c.case_id,
            "student_id": student_id,
            "org_path": c.org_path,
            "state": str(c.state),
            "risk_level": str(c.risk(self.rules)),
            "max_severity": str(c.max_severity),
            "categories": [str(x) for x in c.categories],
            "finding_recorded_at": c.finding_recorded_at,
            "contact_due": c.contact_due,
            "escalation_due": c.escalation_due,
            "reopen": child.reopen,
        }
