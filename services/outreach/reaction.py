"""The reaction to findings, set-based: a whole batch of findings in a handful of SQL statements.

One code path serves both the kit's per-record handler (a batch of one) and the batch consumer below, so the
rules are applied the same way whichever path a record takes. One open case per child holds because (a) the
child's case rows are locked before anything is decided, (b) a partial unique index refuses a second open case
(a race ends in `CaseRace`, and the work is redone with the winner's case in view), and (c) every finding id is
recorded once, so redelivery, a fresh consumer group or a full replay changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.clock import Clock
from services.outreach.domain import CaseState, StaffMember
from services.outreach.settings import Rules
from services.outreach.store import directory
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
from shared.db import DB_UNAVAILABLE
from shared.events import Event
from shared.inbox import InboxConsumer, Poison
from shared.metrics import EVENTS_CONSUMED, HANDLER_DURATION
from shared.outbox import add_events
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

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


CONTEXT = """
SELECT s.student_id, c.case_id, c.org_path, c.state, c.max_severity, c.categories, c.contact_due,
       c.escalation_due, c.closed_at,
       (SELECT coalesce(json_agg(json_build_object('staff_id', staff_id, 'role', role, 'org_path', org_path)
                                 ORDER BY assigned_at, role, staff_id), '[]')
          FROM case_carers cc WHERE cc.case_id = c.case_id) AS carers
  FROM unnest($1::text[]) AS s(student_id)
  LEFT JOIN LATERAL (
      SELECT * FROM cases WHERE student_id = s.student_id
       ORDER BY (state <> 'closed') DESC, opened_at DESC LIMIT 1 FOR UPDATE
  ) c ON true
"""


class Reaction:
    """Applies findings to care cases."""

    def __init__(self, rules: Rules, clock: Clock) -> None:
        self.rules = rules
        self.clock = clock

    async def on_finding(self, conn: asyncpg.Connection, event: Event[FindingRecorded]) -> None:
        """The kit's per-record handler: a batch of one, redone if it lost a race to open the child's case."""
        for _ in range(3):
            try:
                async with conn.transaction():  # a savepoint: a lost race leaves nothing behind
                    await self.apply(conn, [event.payload])
                return
            except CaseRace:
                continue
        raise RuntimeError(f"could not settle the case of finding {event.payload.finding_id}")

    async def apply(self, conn: asyncpg.Connection, findings: list[FindingRecorded]) -> None:
        """Open, join or reopen each child's case; assign carers, register groups, ask departments."""
        rules, now = self.rules, self.clock.now()
        unique: dict[str, FindingRecorded] = {}
        for f in findings:
            unique.setdefault(f.finding_id, f)
        seen = {
            r["finding_id"]
            for r in await conn.fetch("SELECT finding_id FROM case_findings WHERE finding_id = ANY($1)", list(unique))
        }
        todo = [f for f in unique.values() if f.finding_id not in seen]
        if not todo:
            return
        students = sorted({f.student_id for f in todo})  # a fixed lock order: no deadlocks between batches
        tracked: dict[str, Tracked] = {}
        for r in await conn.fetch(CONTEXT, students):
            t = Tracked()
            if r["case_id"] is not None:
                t.case_id, t.org_path, t.state = r["case_id"], r["org_path"], CaseState(r["state"])
                t.max_severity, t.categories = Severity(r["max_severity"]), [Category(c) for c in r["categories"]]
                t.contact_due, t.escalation_due, t.closed_at = r["contact_due"], r["escalation_due"], r["closed_at"]
                t.carers = [CarerAssignment.model_validate(c) for c in r["carers"]]
            tracked[r["student_id"]] = t
        staff = await self._candidates(conn, todo, tracked)

        case_events: list[BaseModel] = []
        applied: list[tuple[str, FindingRecorded, str]] = []
        new_carers: list[tuple[str, CarerAssignment]] = []
        memberships: dict[tuple[str, str], tuple[str, str]] = {}
        referrals: list[dict[str, Any]] = []
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
                memberships.setdefault((f.student_id, str(group)), (new_id(), f.org_path))
            for dept in domain.referral_departments(rules, f.category, f.severity):
                referrals.append(
                    referral_row(rules, t.case_id, f.student_id, f.org_path, dept, f.category, f.severity, now)
                )

        await self._write_cases(conn, tracked, now)
        await conn.executemany(
            "INSERT INTO case_findings (finding_id, case_id, student_id, visit_id, teacher_id, category, severity,"
            " recorded_at, effect) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [
                (f.finding_id, cid, f.student_id, f.visit_id, f.teacher_id, f.category, f.severity, f.recorded_at, e)
                for cid, f, e in applied
            ],
        )
        if new_carers:
            await conn.execute(
                "INSERT INTO case_carers (case_id, staff_id, role, org_path, assigned_at)"
                " SELECT *, $5::timestamptz FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
                " ON CONFLICT DO NOTHING",
                [cid for cid, _ in new_carers],
                [c.staff_id for _, c in new_carers],
                [str(c.role) for _, c in new_carers],
                [c.org_path for _, c in new_carers],
                now,
            )
        other_events = await register_groups(conn, memberships, now) + await request_referrals(conn, referrals)
        await add_events(conn, case_events + other_events)

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
        self, conn: asyncpg.Connection, todo: list[FindingRecorded], tracked: dict[str, Tracked]
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

    async def _write_cases(self, conn: asyncpg.Connection, tracked: dict[str, Tracked], now: datetime) -> None:
        """Insert the new cases (a lost race raises CaseRace) and update the changed ones."""
        rules = self.rules
        new = [(sid, t) for sid, t in tracked.items() if t.new]
        old = [(sid, t) for sid, t in tracked.items() if t.dirty and not t.new]

        def risk(t: Tracked) -> str:
            return str(domain.risk_level(rules, [t.max_severity], t.categories))

        if new:
            inserted = await conn.fetch(
                "INSERT INTO cases (case_id, student_id, org_path, state, risk_level, max_severity, categories,"
                " opened_at, finding_recorded_at, contact_due, escalation_due)"
                " SELECT c, s, p, st, r, m, string_to_array(cats, ','), $8::timestamptz, fr, due, esc"
                " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
                "             $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])"
                "      AS u(c, s, p, st, r, m, cats, fr, due, esc)"
                " ON CONFLICT (student_id) WHERE state <> 'closed' DO NOTHING RETURNING case_id",
                [t.case_id for _, t in new],
                [sid for sid, _ in new],
                [t.org_path for _, t in new],
                [str(t.state) for _, t in new],
                [risk(t) for _, t in new],
                [str(t.max_severity) for _, t in new],
                [",".join(t.categories) for _, t in new],
                now,
                [t.finding_recorded_at for _, t in new],
                [t.contact_due for _, t in new],
                [t.escalation_due for _, t in new],
            )
            if len(inserted) != len(new):
                raise CaseRace(f"{len(new) - len(inserted)} case(s) were opened concurrently")
        if old:
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
                [t.case_id for _, t in old],
                [str(t.state) for _, t in old],
                [risk(t) for _, t in old],
                [str(t.max_severity) for _, t in old],
                [",".join(t.categories) for _, t in old],
                [t.contact_due for _, t in old],
                [t.escalation_due for _, t in old],
                [t.org_path for _, t in old],
                [t.reopen for _, t in old],
                now,
                [t.finding_recorded_at for _, t in old],
            )


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


async def request_referrals(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> list[BaseModel]:
    """Insert referrals (an open one for the same case, department and category is not asked twice); events."""
    if not rows:
        return []
    created = await conn.fetch(
        "INSERT INTO referrals (referral_id, case_id, student_id, department, category, urgency, org_path,"
        " class_path, state, requested_at, acknowledge_by, updated_at)"
        " SELECT r, c, s, d, cat, u, p, cp, 'requested', req, ack, req"
        "   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
        "               $8::text[], $9::timestamptz[], $10::timestamptz[]) AS x(r, c, s, d, cat, u, p, cp, req, ack)"
        " ON CONFLICT (case_id, department, category) WHERE state IN ('requested', 'acknowledged', 'accepted')"
        " DO NOTHING RETURNING referral_id, case_id, department, category, urgency, org_path, requested_at,"
        " acknowledge_by",
        *[[r[k] for r in rows] for k in REFERRAL_KEYS],
    )
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
        for r in created
    ]


REFERRAL_KEYS = (
    "referral_id",
    "case_id",
    "student_id",
    "department",
    "category",
    "urgency",
    "org_path",
    "class_path",
    "requested_at",
    "acknowledge_by",
)


async def register_groups(
    conn: asyncpg.Connection, wanted: dict[tuple[str, str], tuple[str, str]], now: datetime
) -> list[BaseModel]:
    """Enter students in groups from findings (already members are left alone); events for the new ones."""
    if not wanted:
        return []
    keys = list(wanted)
    rows = await conn.fetch(
        "INSERT INTO group_memberships (membership_id, student_id, grp, source, org_path, registered_at)"
        " SELECT m, s, g, $5, p, $6::timestamptz FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
        "      AS u(m, s, g, p)"
        " ON CONFLICT (student_id, grp) DO UPDATE SET ended_at = NULL, source = EXCLUDED.source,"
        " registered_at = EXCLUDED.registered_at WHERE group_memberships.ended_at IS NOT NULL"
        " RETURNING membership_id, student_id, grp, source, org_path",
        [wanted[k][0] for k in keys],
        [k[0] for k in keys],
        [k[1] for k in keys],
        [wanted[k][1] for k in keys],
        GroupSource.VISIT_FINDING.value,
        now,
    )
    return [
        GroupMembershipRegistered(
            membership_id=r["membership_id"],
            student_id=r["student_id"],
            group=SpecialGroup(r["grp"]),
            source=GroupSource(r["source"]),
            org_path=r["org_path"],
            occurred_at=now,
        )
        for r in rows
    ]


def _least(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


class FindingsConsumer(InboxConsumer):
    """The findings consumer group, applying a partition's records set-based in one transaction.

    The kit's InboxConsumer calls a handler per record (several round trips each); this subclass records the
    whole batch in the inbox with one statement and applies it with `Reaction.apply`. On any failure it falls
    back to the kit's own path (the same batch record by record, then each alone with retries and dead letters),
    which calls the same rules through `Reaction.on_finding`.
    """

    def __init__(self, settings: ServiceSettings, pool: asyncpg.Pool, group: str, reaction: Reaction) -> None:
        super().__init__(settings, pool, group, {FINDING_TYPE: reaction.on_finding})
        self.reaction = reaction

    async def _loop(self, consumer: AIOKafkaConsumer, dlt: AIOKafkaProducer) -> None:
        """Like the kit's loop, but one transaction and one offset commit per poll instead of per partition.

        Each partition's records stay in order (they are concatenated partition by partition), and the inbox
        makes a redelivery after a crash between the database commit and the offset commit harmless.
        """
        last_lag = 0.0
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=self.settings.consumer_batch_size)
            self.ready.set()
            if batches:
                await self._process([r for records in batches.values() for r in records], dlt)
                with contextlib.suppress(Exception):  # a rebalance may revoke partitions: the inbox absorbs it
                    await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
            if time.monotonic() - last_lag > 2.0:
                await self._update_lag(consumer)
                last_lag = time.monotonic()

    async def _process(self, records: list[ConsumerRecord], dlt: AIOKafkaProducer) -> None:
        try:
            events = [self._parse(r) for r in records]
        except Poison:
            await super()._process(records, dlt)
            return
        started = time.perf_counter()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await self._claim(conn, [e for e in events if e is not None])
                await self.reaction.apply(conn, [e.payload for e in fresh])
        except DB_UNAVAILABLE:
            raise
        except Exception as exc:
            log.info("batch apply failed (%r); applying record by record", exc)
            await super()._process(records, dlt)
            return
        took = time.perf_counter() - started
        topic = self.logical_topics[0]
        for _ in fresh:
            HANDLER_DURATION.labels(self.service, self.group, FINDING_TYPE).observe(took / max(len(fresh), 1))
        EVENTS_CONSUMED.labels(self.service, self.group, topic, "applied").inc(len(fresh))
        EVENTS_CONSUMED.labels(self.service, self.group, topic, "duplicate").inc(len(records) - len(fresh))
        self.applied += len(fresh)

    async def _claim(self, conn: asyncpg.Connection, events: list[Event[Any]]) -> list[Event[Any]]:
        """Insert the batch's event ids into the inbox; the events not applied before, in order."""
        ids = [e.envelope.id for e in events]
        rows = await conn.fetch(
            "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"
            " RETURNING event_id",
            self.group,
            ids,
        )
        fresh_ids = {r["event_id"] for r in rows}
        out, taken = [], set()
        for e in events:
            if e.envelope.id in fresh_ids and e.envelope.id not in taken:
                taken.add(e.envelope.id)
                out.append(e)
        return out
