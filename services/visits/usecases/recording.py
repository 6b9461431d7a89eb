"""Recording visits: checks, set-based writes, events; and group commit for the single-visit endpoint."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from services.visits import store
from services.visits.domain import checklist
from services.visits.domain import recording as rules
from services.visits.schemas import ScheduleIn, VisitIn
from shared import context, outbox, scope
from shared.auth import Principal
from shared.contracts import visits as ev
from shared.db import DB_UNAVAILABLE
from shared.ids import new_id
from shared.problems import Problem, field_error, not_found


@dataclass
class Outcome:
    """The result for one submitted visit: stored (with ids) or rejected (with faults)."""

    index: int
    visit_id: str | None = None
    assignment_id: str | None = None
    status: str | None = None
    finding_ids: list[str] | None = None
    faults: list[rules.Fault] | None = None

    def doc(self) -> dict[str, Any]:
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
        }


def parse_item(raw: Any) -> VisitIn | list[rules.Fault]:
    """A batch item as a VisitIn, or its schema faults with pointers inside the item."""
    try:
        return VisitIn.model_validate(raw)
    except ValidationError as exc:
        return [
            rules.Fault("/" + "/".join(str(p) for p in e["loc"]) if e["loc"] else "", e["msg"]) for e in exc.errors()
        ]


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
    )


async def schedule(
    conn: asyncpg.Connection, principal: Principal, assignment_id: str, body: ScheduleIn
) -> dict[str, Any]:
    """Plan (or move) the visit of an assignment: who may record it may schedule it."""
    rows = await store.visits.lock_assignments_for_visits(conn, [assignment_id])
    if not rows:
        raise not_found("assignment")
    a = _facts(rows[0])
    if not rules.may_record(principal, a):
        raise scope.forbidden("not an assignment you may schedule")
    faults = rules.check_schedule(body.planned_on, body.mode.value, a)
    if faults:
        raise single_problem(faults)
    # The lock statement's snapshot predates a plan committed while it waited for the lock: read it again.
    visit_id = await store.assignments.scheduled_visit_id(conn, assignment_id) or new_id()
    await store.assignments.schedule_visit(
        conn,
        {
            "visit_id": visit_id,
            "assignment_id": a.assignment_id,
            "campaign_id": a.campaign_id,
            "teacher_id": a.teacher_id,
            "family_id": a.family_id,
            "org_path": a.org_path,
            "mode": body.mode.value,
            "planned_on": body.planned_on,
            "note": body.note,
            "recorded_by": principal.subject,
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
class Submission:
    """One visit to record, with who submits it and the trace context of its request."""

    principal: Principal
    visit: VisitIn | list[rules.Fault]
    trace: context.TraceContext | None = None


async def record_visits(conn: asyncpg.Connection, submissions: list[Submission]) -> list[Outcome]:
    """Check and store visits with their findings and events; bad items are reported, good ones kept.

    Three round trips whatever the number of items: one locking read, one set-based write, one outbox insert.
    """
    items = [s.visit for s in submissions]
    ids = sorted({v.assignment_id for v in items if isinstance(v, VisitIn)})
    facts = {r["assignment_id"]: _facts(r) for r in await store.visits.lock_assignments_for_visits(conn, ids)}
    config = checklist.load()
    now = datetime.now(UTC)
    outcomes: list[Outcome] = []
    visits: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    outcome_rows: dict[str, dict[str, Any]] = {}
    events_by_trace: list[tuple[context.TraceContext | None, list[Any]]] = []
    for index, sub in enumerate(submissions):
        v, principal = sub.visit, sub.principal
        if not isinstance(v, VisitIn):
            outcomes.append(Outcome(index, faults=v))
            continue
        a = facts.get(v.assignment_id)
        if a is None:
            outcomes.append(Outcome(index, faults=[rules.Fault("/assignment_id", "no such assignment", "not_found")]))
            continue
        if not rules.may_record(principal, a):
            outcomes.append(
                Outcome(index, faults=[rules.Fault("/assignment_id", "not an assignment you may record", "forbidden")])
            )
            continue
        faults = rules.check_visit(v, a, config.items(a.checklist_version))
        if faults:
            outcomes.append(Outcome(index, faults=faults))
            continue
        visit_id = a.scheduled_visit_id or new_id()  # a scheduled visit becomes the recorded one
        visits.append(
            {
                "visit_id": visit_id,
                "assignment_id": a.assignment_id,
                "campaign_id": a.campaign_id,
                "teacher_id": a.teacher_id,
                "family_id": a.family_id,
                "org_path": a.org_path,
                "status": v.status,
                "mode": v.mode.value if v.mode else None,
                "visited_on": v.visited_on,
                "duration_minutes": v.duration_minutes,
                "participants": v.participants.model_dump(),
                "checklist": [c.model_dump(mode="json") for c in v.checklist],
                "guidance_topics": v.guidance_topics,
                "miss_reason": v.miss_reason.value if v.miss_reason else None,
                "note": v.note,
                "recorded_by": principal.subject,
                "recorded_at": now,
            }
        )
        outcome_rows[a.assignment_id] = {
            "assignment_id": a.assignment_id,
            "status": v.status,
            "visit_id": visit_id,
            "mode": v.mode.value if v.mode else None,
            "visited_on": v.visited_on,
        }
        # Later items of the same batch see this one's effect (a second completed visit is a conflict).
        facts[a.assignment_id] = rules.AssignmentFacts(**{**a.__dict__, "status": v.status, "scheduled_visit_id": None})
        finding_ids: list[str] = []
        events: list[Any] = []
        events_by_trace.append((sub.trace, events))
        if v.status == "completed":
            events.append(
                ev.VisitCompleted(
                    visit_id=visit_id,
                    campaign_id=a.campaign_id,
                    assignment_id=a.assignment_id,
                    teacher_id=a.teacher_id,
                    family_id=a.family_id,
                    student_ids=sorted(a.children),
                    org_path=a.org_path,
                    mode=v.mode,
                    visited_on=v.visited_on,
                    duration_minutes=v.duration_minutes,
                    # Already validated as request fields: construct without validating again (hot path).
                    checklist=[
                        ev.ChecklistItemAnswer.model_construct(item_id=c.item_id, answer=c.answer) for c in v.checklist
                    ],
                    guidance_topics=v.guidance_topics,
                    finding_count=len(v.findings),
                    occurred_at=now,
                )
            )
            for f in v.findings:
                fid = new_id()
                finding_ids.append(fid)
                findings.append(
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
                events.append(
                    ev.FindingRecorded(
                        finding_id=fid,
                        student_id=f.student_id,
                        visit_id=visit_id,
                        campaign_id=a.campaign_id,
                        teacher_id=a.teacher_id,
                        category=f.category,
                        severity=f.severity,
                        org_path=a.children[f.student_id],
                        visited_on=v.visited_on,
                        recorded_at=now,
                    )
                )
        else:
            assert v.miss_reason is not None
            events.append(
                ev.VisitMissed(
                    visit_id=visit_id,
                    campaign_id=a.campaign_id,
                    assignment_id=a.assignment_id,
                    teacher_id=a.teacher_id,
                    family_id=a.family_id,
                    org_path=a.org_path,
                    reason=v.miss_reason,
                    occurred_at=now,
                )
            )
        outcomes.append(Outcome(index, visit_id, a.assignment_id, v.status, finding_ids))
    await store.visits.insert_visits(conn, visits, findings, list(outcome_rows.values()))
    await outbox.add_caused(conn, events_by_trace)  # each request's events under its own correlation and trace
    return outcomes


STATUS_BY_KIND = {"forbidden": 403, "not_found": 404, "conflict": 409}


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


class VisitWriter:
    """Group commit for single visits: requests that arrive while a group is being written form the next group,
    stored in one transaction (three round trips in all); each request gets its own outcome, and its answer only
    after that transaction committed. No delay is added: under light load a group is a single visit."""

    def __init__(self, *, writers: int = 2, max_group: int = 250) -> None:
        self.writers = writers
        self.max_group = max_group
        self._queue: asyncio.Queue[tuple[Submission, asyncio.Future[Outcome]]] | None = None

    async def submit(self, submission: Submission) -> Outcome:
        """Queue one visit and wait for its outcome (or the group's database error)."""
        if self._queue is None:
            raise RuntimeError("the visit writer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((submission, future))
        return await future

    async def run(self, pool: asyncpg.Pool) -> None:
        """Write groups until cancelled (a background task of the service)."""
        self._queue = asyncio.Queue()
        tasks = [asyncio.create_task(self._write_groups(pool)) for _ in range(self.writers)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            queue, self._queue = self._queue, None
            while not queue.empty():
                _, future = queue.get_nowait()
                if not future.done():
                    future.set_exception(ConnectionError("the service is stopping; nothing was stored"))

    async def _write_groups(self, pool: asyncpg.Pool) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            group = [await queue.get()]
            while len(group) < self.max_group and not queue.empty():
                group.append(queue.get_nowait())
            try:
                async with pool.acquire() as conn, conn.transaction():
                    outcomes = await record_visits(conn, [s for s, _ in group])
            except DB_UNAVAILABLE as exc:
                _fail(group, exc)
                continue
            except Exception as exc:
                if len(group) == 1:
                    _fail(group, exc)
                else:  # one visit broke the group's transaction: write each alone so only that one fails
                    await self._write_alone(pool, group)
                continue
            except BaseException:
                _fail(group, ConnectionError("the service is stopping; nothing was stored"))
                raise
            for (_, future), outcome in zip(group, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    @staticmethod
    async def _write_alone(pool: asyncpg.Pool, group: list[tuple[Submission, asyncio.Future[Outcome]]]) -> None:
        for submission, future in group:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    [outcome] = await record_visits(conn, [submission])
            except Exception as exc:
                _fail([(submission, future)], exc)
            else:
                if not future.done():
                    future.set_result(outcome)


def _fail(group: list[tuple[Submission, asyncio.Future[Outcome]]], exc: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
