"""The reaction to findings, set-based: a whole batch of findings in a handful of SQL statements.

One code path serves both the kit's per-record handler (a batch of one) and the batch consumer (consumer.py), so the
rules are applied the same way whichever path a record takes. One open case per child holds because (a) the
child's case rows are locked before anything is decided, (b) a partial unique index refuses a second open case
(a race ends in `CaseRace`, and the work is redone with the winner's case in view), and (c) every finding id is
recorded once, so redelivery, a fresh consumer group or a full replay changes nothing.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.domain import CaseState, StaffMember
from services.outreach.settings import Rules
from services.outreach.store import directory
from services.outreach.store import reaction as sql
from shared.clock import Clock
from shared.context import TraceContext
from shared.contracts.common import Category, Department, Severity, StaffRole
from shared.contracts.outreach import (
    CarerAssignment,
    CaseAssigned,
    CaseJoined,
    CaseOpened,
    CaseReopened,
    GroupMembershipRegistered,
    GroupSource,
    ReferralRequested,
    SpecialGroup,
)
from shared.contracts.visits import FindingRecorded
from shared.events import Event
from shared.outbox import add_caused

FINDING_TYPE = "visits.finding.recorded.v1"


class CaseRace(Exception):
    """Another transaction opened a child's case between our read and our insert."""


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Tracked:
    """A child's current case while a batch is applied (None fields until the child has one)."""

    case_id: str | None = None
    org_path: str = ""
    state: CaseState = CaseState.CLOSED
    max_severity: Severity = Severity.LOW
    categories: list[Category] = field(default_factory=list)
    contact_due: datetime | None = None
    escalation_due: datetime | None = None
    closed_at: datetime | None = None
    opened_at: datetime | None = None
    finding_recorded_at: datetime | None = None
    carers: list[CarerAssignment] = field(default_factory=list)
    new: bool = False
    reopen: bool = False
    dirty: bool = False


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

    async def on_finding(self, conn: asyncpg.Connection, event: Event[FindingRecorded]) -> None:
        """One finding (a batch of one)."""
        await self.on_findings(conn, [event])

    async def apply(
        self,
        conn: asyncpg.Connection,
        findings: list[FindingRecorded],
        causes: Mapping[str, TraceContext | None] | None = None,
    ) -> None:
        """Open, join or reopen each child's case; assign carers, register groups, ask departments.

        The events go out under the trace of the finding that caused each (`causes`, by finding id: the consumed
        events' contexts), so one trace shows a visit, its findings and what each set going.
        """
        rules, now = self.rules, self.clock.now()
        unique: dict[str, FindingRecorded] = {}
        for f in findings:
            unique.setdefault(f.finding_id, f)
        seen = await sql.seen_findings(conn, list(unique))
        todo = [f for f in unique.values() if f.finding_id not in seen]
        if not todo:
            return
        students = sorted({f.student_id for f in todo})  # a fixed lock order: no deadlocks between batches
        tracked: dict[str, Tracked] = {}
        for r in await sql.case_context(conn, students):
            t = Tracked()
            if r["case_id"] is not None:
                t.case_id, t.org_path, t.state = r["case_id"], r["org_path"], CaseState(r["state"])
                t.max_severity, t.categories = Severity(r["max_severity"]), [Category(c) for c in r["categories"]]
                t.contact_due, t.escalation_due, t.closed_at = r["contact_due"], r["escalation_due"], r["closed_at"]
                t.carers = [CarerAssignment.model_validate(c) for c in r["carers"]]
            tracked[r["student_id"]] = t
        staff = await self._candidates(conn, todo)

        caused: dict[str, list[BaseModel]] = defaultdict(list)  # finding id -> the events it caused, in order
        applied: list[tuple[str, FindingRecorded, str]] = []
        new_carers: list[tuple[str, CarerAssignment]] = []
        memberships: dict[tuple[str, str], tuple[str, str, str]] = {}
        referrals: list[dict[str, Any]] = []
        referred_by: dict[str, str] = {}  # referral id -> finding id
        for f in todo:
            t = tracked[f.student_id]
            effect = self._decide(t, f, now)
            if effect is None:
                continue
            assert t.case_id is not None
            wanted = [
                r for r in domain.carer_roles(rules, f.category, f.severity) if r not in {c.role for c in t.carers}
            ]
            chosen: list[CarerAssignment] = []
            if wanted:
                class_id = domain.class_of(f.org_path)
                pool = staff.get((class_id, domain.school_path(f.org_path)), [])
                for c in domain.choose_carers(rules, wanted, class_id, f.org_path, pool):
                    chosen.append(CarerAssignment(staff_id=c.staff_id, role=c.role, org_path=c.org_path))
                t.carers += chosen
                new_carers += [(t.case_id, c) for c in chosen]
            if t.state == CaseState.OPEN and t.carers:
                t.state = CaseState.ASSIGNED
            risk = domain.risk_level(rules, [t.max_severity], t.categories)
            facts: dict[str, Any] = {
                "case_id": t.case_id,
                "student_id": f.student_id,
                "org_path": t.org_path,
                "risk_level": risk,
                "categories": list(t.categories),
                "occurred_at": now,
            }
            due = domain.contact_due(rules, f.severity, f.recorded_at)
            case_events = caused[f.finding_id]
            if effect == "opened":
                case_events.append(
                    CaseOpened(
                        **facts, finding_id=f.finding_id, first_contact_due=due, finding_recorded_at=f.recorded_at
                    )
                )
            elif effect == "reopened":
                case_events.append(CaseReopened(**facts, finding_id=f.finding_id, first_contact_due=due))
            else:
                case_events.append(CaseJoined(**facts, finding_id=f.finding_id, first_contact_due=t.contact_due or due))
            if chosen:
                case_events.append(CaseAssigned(**facts, carers=list(t.carers)))
            applied.append((t.case_id, f, effect))
            group = domain.special_group(rules, f.category)
            if group is not None:
                memberships.setdefault((f.student_id, str(group)), (new_id(), f.org_path, f.finding_id))
            for dept in domain.referral_departments(rules, f.category, f.severity):
                row = referral_row(rules, t.case_id, f.student_id, f.org_path, dept, f.category, f.severity, now)
                referrals.append(row)
                referred_by[row["referral_id"]] = f.finding_id

        # Cases first: a lost race to open a child's case must be found before anything else is written.
        new = [self._row(sid, t) for sid, t in tracked.items() if t.new]
        if await sql.insert_cases(conn, new, now) != len(new):
            raise CaseRace("a child's case was opened concurrently")
        await sql.update_cases(conn, [self._row(sid, t) for sid, t in tracked.items() if t.dirty and not t.new], now)
        await sql.add_findings(
            conn,
            [
                (f.finding_id, cid, f.student_id, f.visit_id, f.teacher_id, f.category, f.severity, f.recorded_at, e)
                for cid, f, e in applied
            ],
        )
        await sql.add_carers(conn, [(cid, c.staff_id, str(c.role), c.org_path) for cid, c in new_carers], now)
        joined = [(m, s, g, p) for (s, g), (m, p, _) in memberships.items()]
        for r in await sql.register_memberships(conn, joined, GroupSource.VISIT_FINDING, now):
            caused[memberships[(r["student_id"], r["grp"])][2]].append(
                GroupMembershipRegistered(
                    membership_id=r["membership_id"],
                    student_id=r["student_id"],
                    group=SpecialGroup(r["grp"]),
                    source=GroupSource(r["source"]),
                    org_path=r["org_path"],
                    occurred_at=now,
                )
            )
        for referral in await request_referrals(conn, referrals):
            caused[referred_by[referral.referral_id]].append(referral)
        await add_caused(conn, [((causes or {}).get(fid), events) for fid, events in caused.items()])

    def _row(self, student_id: str, t: Tracked) -> dict[str, Any]:
        """A tracked case as the columns the store writes."""
        return {
            "case_id": t.case_id,
            "student_id": student_id,
            "org_path": t.org_path,
            "state": str(t.state),
            "risk_level": str(domain.risk_level(self.rules, [t.max_severity], t.categories)),
            "max_severity": str(t.max_severity),
            "categories": [str(c) for c in t.categories],
            "finding_recorded_at": t.finding_recorded_at,
            "contact_due": t.contact_due,
            "escalation_due": t.escalation_due,
            "reopen": t.reopen,
        }

    def _decide(self, t: Tracked, f: FindingRecorded, now: datetime) -> str | None:
        """How a finding changes the child's case (in memory); None when it does not concern a case."""
        rules = self.rules
        qualifies = domain.opens_case(rules, f.category, f.severity)
        due = domain.contact_due(rules, f.severity, f.recorded_at)
        if t.case_id is not None and t.state != CaseState.CLOSED:
            if not qualifies and not rules.join_non_qualifying:
                return None
            if f.category not in t.categories:
                t.categories.append(f.category)
            t.max_severity = domain.max_severity([t.max_severity, f.severity])
            if qualifies:
                t.contact_due = _least(t.contact_due, due)
                t.escalation_due = _least(t.escalation_due, due)
            t.dirty = True
            return "joined"
        if not qualifies:
            return None  # a minor finding about a child without an open case: nothing to care for
        reopen = (
            t.case_id is not None
            and t.closed_at is not None
            and now - t.closed_at <= timedelta(days=rules.reopen_within_days)
        )
        if not reopen:
            t.case_id, t.new, t.carers, t.opened_at = new_id(), True, [], now
        t.reopen = reopen
        t.org_path, t.state, t.categories, t.max_severity = f.org_path, CaseState.OPEN, [f.category], f.severity
        t.contact_due = t.escalation_due = due
        t.finding_recorded_at = f.recorded_at
        t.dirty = True
        return "reopened" if reopen else "opened"

    async def _candidates(
        self, conn: asyncpg.Connection, todo: list[FindingRecorded]
    ) -> dict[tuple[str | None, str], list[StaffMember]]:
        """Possible carers per (class, school) of the batch, in one query."""
        keys = {(domain.class_of(f.org_path), f.org_path) for f in todo}
        if not keys:
            return {}
        roles = sorted(
            (
                {*self.rules.fallback_carer_roles, *self.rules.default_carer_roles}
                | {r for rs in self.rules.category_carer_roles.values() for r in rs}
                | {e.role for e in self.rules.extra_carers}
            )
            # Class teachers only count for their own class (matched by head_class_id), not by role at a level.
            - {StaffRole.CLASS_TEACHER}
        )
        levels = sorted({lvl for _, p in keys for lvl in domain.org_levels(p)})
        classes = sorted({c for c, _ in keys if c})
        found = await directory.carer_candidates_many(conn, classes, levels, roles)
        by_path: dict[str, list[StaffMember]] = defaultdict(list)
        by_head: dict[str, list[StaffMember]] = defaultdict(list)
        for s in found:
            by_path[s.org_path].append(s)
            if s.head_class_id:
                by_head[s.head_class_id].append(s)
        out: dict[tuple[str | None, str], list[StaffMember]] = {}
        for class_id, path in keys:
            members = [m for lvl in domain.org_levels(path) for m in by_path.get(lvl, [])]
            out[(class_id, domain.school_path(path))] = members + (by_head.get(class_id, []) if class_id else [])
        return out


async def request_referrals(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> list[ReferralRequested]:
    """Ask departments for help (see `referral_row`); events for the referrals actually created."""
    return [
        ReferralRequested(
            referral_id=r["referral_id"],
            case_id=r["case_id"],
            department=r["department"],
            category=r["category"],
            urgency=r["urgency"],
            org_path=r["org_path"],
            occurred_at=r["requested_at"],
            acknowledge_by=r["acknowledge_by"],
        )
        for r in await sql.insert_referrals(conn, rows)
    ]


def referral_row(
    rules: Rules,
    case_id: str,
    student_id: str,
    class_path: str,
    department: Department | str,
    category: Category,
    urgency: Severity,
    now: datetime,
) -> dict[str, Any]:
    """A referral to insert (its public org path is cut at the school)."""
    return {
        "referral_id": new_id(),
        "case_id": case_id,
        "student_id": student_id,
        "department": str(department),
        "category": str(category),
        "urgency": str(urgency),
        "org_path": domain.school_path(class_path),
        "class_path": class_path,
        "requested_at": now,
        "acknowledge_by": now + timedelta(days=rules.referral_ack_days),
    }


def _least(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a
