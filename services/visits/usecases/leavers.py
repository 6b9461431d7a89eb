"""A teacher who leaves hands their open assignments over: in each launched campaign their families not visited
yet (or missed) go to the teachers the launch's planner chooses now (`planning.generate_assignments` with the
colleagues' current loads), one `assignment.changed` (reassigned) each, in the directory batch that brought the
leaving. A family no colleague can take (a school left without teachers) stays as it is."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

import asyncpg

from services.visits import store
from services.visits.domain import planning
from services.visits.usecases.assignments import changed
from services.visits.usecases.campaigns import build_plan
from shared.contracts import visits as ev
from shared.outbox import add_events

log = logging.getLogger(__name__)


async def hand_over(conn: asyncpg.Connection, leavers: list[str], now: datetime) -> int:
    """Reassign the open assignments of teachers who left; the number reassigned."""
    if not leavers:
        return 0
    rows = await store.assignments.list_open_assignments_of_staff(conn, sorted(set(leavers)))
    by_campaign: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for r in rows:
        by_campaign[r["campaign_id"]].append(r)
    events: list[Any] = []
    for campaign_id, open_rows in by_campaign.items():
        events += await _hand_over_campaign(conn, campaign_id, open_rows, now)
    await add_events(conn, events)
    if len(events) < len(rows):
        log.warning("%d open assignments of leavers found no colleague to take them", len(rows) - len(events))
    return len(events)


async def _hand_over_campaign(
    conn: asyncpg.Connection, campaign_id: str, rows: list[asyncpg.Record], now: datetime
) -> list[ev.AssignmentChanged]:
    scope, target = rows[0]["campaign_path"], rows[0]["target_per_teacher"]
    students = await store.directory.list_students_of_families(conn, [r["family_id"] for r in rows], scope)
    teachers = []
    for school in sorted({planning.school_path(s["org_path"]) for s in students}):
        teachers += await store.directory.list_teachers_in_scope(conn, school)
    loads = await store.assignments.list_teacher_loads(conn, campaign_id, [t["staff_id"] for t in teachers])
    plan = build_plan(students, teachers, target, loads)
    by_family = {r["family_id"]: r for r in rows}
    events = []
    for p in plan.assignments:
        a = by_family[p.family_id]
        await store.assignments.update_assignment_teacher(conn, a["assignment_id"], p.teacher_id)
        events.append(changed(a, ev.AssignmentChange.REASSIGNED, p.teacher_id, now))
    return events
