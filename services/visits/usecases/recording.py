"""Recording visits: checks, set-based writes, events, Idempotency-Keys; scheduling a visit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import ValidationError

from services.visits import store
from services.visits.domain import checklist, requirements
from services.visits.domain import recording as rules
from services.visits.schemas import FindingIn, ScheduleIn, VisitIn
from shared import context, edges, idempotency, outbox, scope
from shared.auth import Principal
from shared.clock import Clock
from shared.contracts import visits as ev
from shared.events import Built
from shared.ids import new_id
from shared.problems import Problem, field_error, not_found
from shared.writes import Write


@dataclass
class Outcome:
    """The result for one submitted visit: stored (with ids) or rejected (with faults)."""

    index: int
    visit_id: str | None = None
    assignment_id: str | None = None
    status: str | None = None
    finding_ids: list[str] | None = None
    faults: list[rules.Fault] | None = None
    current: dict[str, Any] | None = None  # a conflict: the assignment as it is now
    assignment_version: int | None = None

    def doc(self) -> dict[str, Any]:
        if self.current is not None:
            return {
                "index": self.index,
                "result": "conflict",
                "assignment_id": self.current["assignment_id"],
                "current": self.current,
            }
        if self.faults:
            return {
                "index": self.index,
                "result": "rejected",
                "errors": [field_error(f"/visits/{self.index}{f.pointer}", f.detail) for f in self.faults],
            }
        return {
            "index": self.index,
            "result": "stored",
            "visit_id": self.visit_id,
            "assignment_id": self.assignment_id,
            "status": self.status,
            "finding_ids": self.finding_ids,
            "assignment_version": self.assignment_version,
        }


def parse_item(raw: Any, text_checked: bool) -> VisitIn | list[rules.Fault]:
    """A batch item as a VisitIn, or its faults with pointers inside the item: text PostgreSQL cannot store (unless
    the whole body was `text_checked`: `edges.may_hold_bad_text` said none can be there), then the schema's."""
    faults = [] if text_checked else [rules.Fault(e["pointer"], e["detail"]) for e in edges.bad_strings(raw)]
    try:
        visit = VisitIn.model_validate(raw)
    except ValidationError as exc:
        faults += [rules.Fault("".join(f"/{edges.pointer_token(p)}" for p in e["loc"]), e["msg"]) for e in exc.errors()]
    return faults or visit


def _facts(r: asyncpg.Record) -> rules.AssignmentFacts:
    return rules.AssignmentFacts(
        assignment_id=r["assignment_id"],
        campaign_id=r["campaign_id"],
        teacher_id=r["teacher_id"],
        family_id=r["family_id"],
        org_path=r["org_path"],
        status=r["status"],
        campaign_status=r["campaign_status"],
        starts_on=r["starts_on"],
        ends_on=r["ends_on"],
        checklist_version=r["checklist_version"],
        modes=frozenset(r["required_modes"]),
        children=r["children"],
        scheduled_visit_id=r["scheduled_visit_id"],
        version=r["version"],
    )


async def schedule(w: Write, assignment_id: str, body: ScheduleIn) -> dict[str, Any]:
    """Plan (or move) the visit of an assignment: who may record it may schedule it (stamped by the database)."""
    rows = await store.visits.list_assignments_for_visits(w.conn, [assignment_id])
    if not rows:
        raise not_found("assignment")
    a = _facts(rows[0])
    if not rules.may_record(w.principal, a):
        raise scope.forbidden("not an assignment you may schedule")
    faults = rules.check_schedule(body.planned_on, body.mode.value, a)
    if faults:
        raise single_problem(faults)
    # The lock statement's snapshot predates a plan committed while it waited for the lock: read it again.
    visit_id = await store.assignments.get_scheduled_visit_id(w.conn, assignment_id) or new_id()
    await store.assignments.upsert_scheduled_visit(
        w.conn,
        {
            **a.visit_keys(visit_id),
            "mode": body.mode.value,
            "planned_on": body.planned_on,
            "note": body.note,
            "recorded_by": w.principal.subject,
        },
    )
    return {
        "visit_id": visit_id,
        "assignment_id": a.assignment_id,
        "status": "scheduled",
        "planned_on": body.planned_on,
        "mode": body.mode.value,
    }


@dataclass(frozen=True)
class Item:
    """One visit to check and store: who submits it, the visit (or its schema faults), the trace context of its
    request, and its index in that request."""

    principal: Principal
    visit: VisitIn | list[rules.Fault]
    trace: context.TraceContext | None
    index: int


@dataclass
class Writes:
    """What a group of visits writes: visit rows, finding rows, the assignments' outcome, events by request."""

    visits: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[context.TraceContext | None, list[Any]]] = field(default_factory=list)


async def record_visits(conn: asyncpg.Connection, items: list[Item], now: datetime) -> list[Outcome]:
    """Check and store visits with their findings and events; bad items are reported, good ones kept.

    Three round trips whatever the number of items: one locking read, one set-based write, one outbox insert.
    """
    ids = sorted({i.visit.assignment_id for i in items if isinstance(i.visit, VisitIn)})
    facts = {r["assignment_id"]: _facts(r) for r in await store.visits.list_assignments_for_visits(conn, ids)}
    config = checklist.load()
    writes = Writes()
    outcomes = [_record_one(item, facts, config, now, writes) for item in items]
    versions = await store.visits.insert_visits(conn, writes.visits, writes.findings, list(writes.outcomes.values()))
    for o in outcomes:
        if o.assignment_id is not None and not o.faults:
            o.assignment_version = versions[o.assignment_id]
    await outbox.add_caused(conn, writes.events)  # each request's events under its own correlation and trace
    return outcomes


def _refusal(item: Item, a: rules.AssignmentFacts | None, config: checklist.Checklists) -> list[rules.Fault]:
    """Why the item cannot be stored (nothing when it can)."""
    v = item.visit
    if not isinstance(v, VisitIn):
        return v
    if a is None:
        return [rules.Fault("/assignment_id", "no such assignment", "not_found")]
    stale = rules.check_version(v.assignment_version, a)
    if stale:
        return stale
    if not rules.may_record(item.principal, a):
        return [rules.Fault("/assignment_id", "not an assignment you may record", "forbidden")]
    return rules.check_visit(v, a, config.items(a.checklist_version))


def _record_one(
    item: Item,
    facts: dict[str, rules.AssignmentFacts],
    config: checklist.Checklists,
    now: datetime,
    writes: Writes,
) -> Outcome:
    """Check one item against the locked facts and, when it passes, add its rows and events to the writes."""
    v = item.visit
    a = facts.get(v.assignment_id) if isinstance(v, VisitIn) else None
    faults = _refusal(item, a, config)
    if faults and a is not None and faults[0].kind == "stale":
        current = {"assignment_id": a.assignment_id, "version": a.version, "status": a.status}
        return Outcome(
            item.index, faults=faults, current={**current, "may_record": rules.may_record(item.principal, a)}
        )
    if faults:
        return Outcome(item.index, faults=faults)
    assert isinstance(v, VisitIn) and a is not None
    visit_id = a.scheduled_visit_id or new_id()  # a scheduled visit becomes the recorded one
    checked = _assess(v, a, config, now)
    # The requirements and flags as the visit row and its event both store them (one list each, shared).
    reqs = [r._asdict() for r in checked.requirements]
    flags = [f._asdict() for f in checked.flags]
    writes.visits.append(_visit_row(v, a, visit_id, item.principal, now, reqs, flags))
    writes.outcomes[a.assignment_id] = {
        "assignment_id": a.assignment_id,
        "status": v.status,
        "visit_id": visit_id,
        "mode": v.mode.value if v.mode else None,
        "visited_on": v.visited_on,
    }
    # Later items of the same group see this one's effect (a second completed visit is a conflict).
    facts[a.assignment_id] = rules.AssignmentFacts(**{**a.__dict__, "status": v.status, "scheduled_visit_id": None})
    events: list[Built] = []
    writes.events.append((item.trace, events))
    if v.status != "completed":
        events.append(_missed(v, a, visit_id, now))
        return Outcome(item.index, visit_id, a.assignment_id, v.status, [])
    events.append(_completed(v, a, visit_id, now, reqs, flags))
    finding_ids: list[str] = []
    for f in v.findings:
        fid = new_id()
        finding_ids.append(fid)
        writes.findings.append(
            {
                "finding_id": fid,
                "visit_id": visit_id,
                "campaign_id": a.campaign_id,
                "student_id": f.student_id,
                "category": f.category.value,
                "severity": f.severity.value,
                "note": f.note,
                "org_path": a.children[f.student_id],
                "recorded_at": now,
            }
        )
        events.append(_finding(f, fid, v, a, visit_id, now))
    return Outcome(item.index, visit_id, a.assignment_id, v.status, finding_ids)


def _assess(
    v: VisitIn, a: rules.AssignmentFacts, config: checklist.Checklists, now: datetime
) -> requirements.Assessment:
    """The visit's requirements as facts and its flags (a missed visit has none)."""
    if v.status != "completed" or v.mode is None:
        return requirements.Assessment((), ())
    facts = requirements.VisitFacts(
        teacher_id=a.teacher_id,
        visited_on=v.visited_on,
        visited_at=v.visited_at,
        recorded_at=now,
        mode=v.mode.value,
        colleague_ids=tuple(v.participants.teacher_ids),
        declared={c.item_id: c.answer for c in v.checklist},
    )
    return requirements.assess(facts, config.items(a.checklist_version), config.requirements)


def _visit_row(
    v: VisitIn,
    a: rules.AssignmentFacts,
    visit_id: str,
    principal: Principal,
    now: datetime,
    reqs: list[dict[str, Any]],
    flags: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        **a.visit_keys(visit_id),
        "status": v.status,
        "mode": v.mode,
        "visited_on": v.visited_on,
        "duration_minutes": v.duration_minutes,
        "participants": {"teacher_ids": v.participants.teacher_ids, "guardian_ids": v.participants.guardian_ids},
        "checklist": [{"item_id": c.item_id, "answer": c.answer, "note": c.note} for c in v.checklist],
        "guidance_topics": v.guidance_topics,
        "miss_reason": v.miss_reason,
        "note": v.note,
        "recorded_by": principal.subject,
        "recorded_at": now,
        "visited_at": v.visited_at,
        "requirements": reqs,
        "flags": flags,
    }


# The events of a recorded visit are built as the contracts' JSON fields, in their order (`events.Built`): no model
# per event (a VisitCompleted with its ~20 checklist and requirement items cost more to build and validate than the
# rest of its visit's work). tests/unit/visits/test_visit_events.py holds each builder to its contract.


def _completed(
    v: VisitIn,
    a: rules.AssignmentFacts,
    visit_id: str,
    now: datetime,
    reqs: list[dict[str, Any]],
    flags: list[dict[str, Any]],
) -> Built:
    return Built(
        ev.VisitCompleted,
        {
            "visit_id": visit_id,
            "campaign_id": a.campaign_id,
            "assignment_id": a.assignment_id,
            "teacher_id": a.teacher_id,
            "family_id": a.family_id,
            "student_ids": sorted(a.children),
            "org_path": a.org_path,
            "mode": v.mode,
            "visited_on": v.visited_on,
            "duration_minutes": v.duration_minutes,
            "checklist": [{"item_id": c.item_id, "answer": c.answer} for c in v.checklist],
            "guidance_topics": v.guidance_topics,
            "finding_count": len(v.findings),
            "occurred_at": now,
            "visited_at": v.visited_at,
            "recorded_at": now,
            "requirements": reqs,
            "flags": flags,
        },
    )


def _missed(v: VisitIn, a: rules.AssignmentFacts, visit_id: str, now: datetime) -> Built:
    return Built(
        ev.VisitMissed,
        {
            "visit_id": visit_id,
            "campaign_id": a.campaign_id,
            "assignment_id": a.assignment_id,
            "teacher_id": a.teacher_id,
            "family_id": a.family_id,
            "org_path": a.org_path,
            "reason": v.miss_reason,
            "occurred_at": now,
        },
    )


def _finding(
    f: FindingIn, finding_id: str, v: VisitIn, a: rules.AssignmentFacts, visit_id: str, now: datetime
) -> Built:
    return Built(
        ev.FindingRecorded,
        {
            "finding_id": finding_id,
            "student_id": f.student_id,
            "visit_id": visit_id,
            "campaign_id": a.campaign_id,
            "teacher_id": a.teacher_id,
            "category": f.category,
            "severity": f.severity,
            "org_path": a.children[f.student_id],
            "visited_on": v.visited_on,
            "recorded_at": now,
        },
    )


STATUS_BY_KIND = {"forbidden": 403, "not_found": 404, "conflict": 409, "stale": 409}


def single_problem(faults: list[rules.Fault]) -> Problem:
    """The problem for a rejected single visit: the most telling status, every field error."""
    status = next((STATUS_BY_KIND[f.kind] for f in faults if f.kind in STATUS_BY_KIND), 422)
    titles = {403: "Forbidden", 404: "Not found", 409: "Conflict", 422: "Invalid visit"}
    return Problem(
        status,
        titles[status],
        "; ".join(f.detail for f in faults),
        errors=[field_error(f.pointer, f.detail) for f in faults],
    )


# ---------------------------------------------------------------------------- one write path: a group


@dataclass(frozen=True)
class Submission:
    """One request that records visits: one visit (`single`) or a batch collected offline (`batch`), who sends it,
    its trace context and its Idempotency-Key claim (None without a key)."""

    principal: Principal
    visits: list[VisitIn | list[rules.Fault]]
    kind: Literal["single", "batch"]
    trace: context.TraceContext | None = None
    claim: idempotency.Claim | None = None


@dataclass(frozen=True)
class Recorded:
    """A submission written by this group: its outcomes and its answer (no answer: a single visit refused)."""

    outcomes: list[Outcome]
    status: int | None
    body: dict[str, Any] | None


@dataclass(frozen=True)
class Earlier:
    """A submission whose Idempotency-Key was answered before (or by an earlier request of the same group): the
    answer kept for the key, None while it is still open."""

    answer: idempotency.Stored | None


Result = Recorded | Earlier


def answer(kind: str, outcomes: list[Outcome]) -> tuple[int | None, dict[str, Any] | None]:
    """The HTTP answer of a submission: a batch always has one (per-item results); a single visit only when it was
    stored (a refusal is a problem, which is not kept for its key)."""
    if kind == "batch":
        stored = sum(1 for o in outcomes if not o.faults)
        conflicts = sum(1 for o in outcomes if o.current is not None)
        return 200, {
            "stored": stored,
            "rejected": len(outcomes) - stored - conflicts,
            "conflicts": conflicts,
            "results": [o.doc() for o in outcomes],
        }
    [outcome] = outcomes
    if outcome.faults:
        return None, None
    doc = outcome.doc()
    del doc["index"], doc["result"]
    return 201, doc


async def record_group(conn: asyncpg.Connection, submissions: list[Submission], clock: Clock) -> list[Result]:
    """Record the visits of several requests in the caller's transaction, Idempotency-Keys included.

    Keys are claimed first (before any assignment is locked, the order every write of the service keeps); the
    visits of requests whose key was free are checked and written together; their answers are kept under their
    keys and refusals give their key back; requests whose key was already answered get that answer."""
    won = await idempotency.claim(conn, [s.claim for s in submissions if s.claim is not None])
    fresh: list[bool] = []
    for s in submissions:
        if s.claim is None:
            fresh.append(True)
        else:
            fresh.append(s.claim.id in won)
            won.discard(s.claim.id)  # a second request of the group with the same key replays the first one
    items = [
        Item(s.principal, v, s.trace, i) for s, new in zip(submissions, fresh, strict=True) if new
        for i, v in enumerate(s.visits)
    ]  # fmt: skip
    outcomes = iter(await record_visits(conn, items, clock.now()))
    results: list[Result | None] = []
    kept: list[tuple[idempotency.Claim, int, Any]] = []
    refused: list[idempotency.Claim] = []
    for s, new in zip(submissions, fresh, strict=True):
        if not new:
            results.append(None)
            continue
        mine = [next(outcomes) for _ in s.visits]
        status, body = answer(s.kind, mine)
        if s.claim is not None:
            if status is None:
                refused.append(s.claim)
            else:
                kept.append((s.claim, status, body))
        results.append(Recorded(mine, status, body))
    await idempotency.keep(conn, kept)
    await idempotency.release(conn, refused)
    replays = [s.claim for s, r in zip(submissions, results, strict=True) if r is None and s.claim is not None]
    earlier = await idempotency.stored(conn, replays)
    return [
        r if r is not None else Earlier(earlier.get(s.claim.id) if s.claim else None)
        for s, r in zip(submissions, results, strict=True)
    ]
