"""Hand-made assignments: add, reassign, remove (each inside the caller's transaction, events with the state)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.visits import store
from services.visits.domain import planning
from services.visits.schemas import AssignmentIn
from services.visits.usecases.campaigns import require_step
from shared import scope
from shared.auth import ADMINS
from shared.contracts import visits as ev
from shared.ids import new_id
from shared.outbox import add_events
from shared.problems import conflict, found, invalid
from shared.writes import Write


async def _teacher_for(conn: asyncpg.Connection, teacher_id: str, campaign_path: str, pointer: str) -> asyncpg.Record:
    staff = await store.directory.get_staff(conn, teacher_id)
    if staff is None or not staff["active"]:
        raise invalid(pointer, "no such active staff member")
    if not scope.within(staff["org_path"], campaign_path):
        raise invalid(pointer, "the teacher is outside the campaign's scope")
    return staff


async def add_assignment(w: Write, campaign_id: str, body: AssignmentIn) -> dict[str, Any]:
    """Assign a family that has no assignment in this campaign to a teacher by hand."""
    w.principal.require(*ADMINS)
    camp = found(await store.campaigns.get_campaign(w.conn, campaign_id), "campaign")
    require_step(camp["status"], "assign")
    children = await store.directory.list_family_children(w.conn, body.family_id, camp["org_path"])
    if not children:
        raise invalid("/family_id", "no family with children in the campaign's scope")
    org_path = children[0]["org_path"]
    scope.require(w.principal, *(c["org_path"] for c in children))  # every child's class: all are visited
    staff = await _teacher_for(w.conn, body.teacher_id, camp["org_path"], "/teacher_id")
    scope.require(w.principal, staff["org_path"])
    aid = new_id()
    student_ids = [c["student_id"] for c in children]
    try:
        async with w.conn.transaction():  # savepoint: a duplicate becomes a 409, not a broken transaction
            await store.assignments.insert_assignments(
                w.conn,
                [(aid, campaign_id, body.teacher_id, body.family_id, student_ids, org_path,
                  planning.school_path(org_path), planning.district_path(org_path), "assigned")],
            )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise conflict("the family already has an assignment in this campaign") from exc
    await add_events(
        w.conn,
        [
            ev.AssignmentMade(
                assignment_id=aid,
                campaign_id=campaign_id,
                teacher_id=body.teacher_id,
                family_id=body.family_id,
                student_ids=student_ids,
                org_path=org_path,
                occurred_at=w.clock.now(),
            )
        ],
    )
    return {
        "assignment_id": aid,
        "campaign_id": campaign_id,
        "teacher_id": body.teacher_id,
        "family_id": body.family_id,
        "student_ids": student_ids,
        "org_path": org_path,
        "status": "assigned",
    }


async def _assignment_for_change(w: Write, assignment_id: str) -> asyncpg.Record:
    """The assignment locked, after the caller's access, still at the version `If-Match` names (else 412), open and in
    a launched campaign (else 409)."""
    w.principal.require(*ADMINS)
    a = found(await store.assignments.get_assignment(w.conn, assignment_id, lock=True), "assignment")
    scope.require(w.principal, a["org_path"])
    w.check(a["version"])
    require_step(a["campaign_status"], "assign")
    if a["status"] in ("completed", "removed"):
        raise conflict(f"the assignment is {a['status']}")
    return a


async def reassign(w: Write, assignment_id: str, teacher_id: str) -> dict[str, Any]:
    """Give an open assignment to another teacher of the campaign's scope (412 when `If-Match` is stale)."""
    a = await _assignment_for_change(w, assignment_id)
    staff = await _teacher_for(w.conn, teacher_id, a["campaign_path"], "/teacher_id")
    scope.require(w.principal, staff["org_path"])
    if teacher_id == a["teacher_id"]:
        raise invalid("/teacher_id", "the assignment already belongs to this teacher")
    version = await store.assignments.update_assignment_teacher(w.conn, assignment_id, teacher_id)
    await add_events(w.conn, [changed(a, ev.AssignmentChange.REASSIGNED, teacher_id, w.clock.now())])
    return {
        "assignment_id": assignment_id,
        "teacher_id": teacher_id,
        "previous_teacher_id": a["teacher_id"],
        "version": version,
    }


async def remove(w: Write, assignment_id: str) -> dict[str, Any]:
    """Withdraw an open assignment (the family can then be assigned again by hand; 412 when `If-Match` is stale)."""
    a = await _assignment_for_change(w, assignment_id)
    version = await store.assignments.update_assignment_removed(w.conn, assignment_id)
    await add_events(w.conn, [changed(a, ev.AssignmentChange.REMOVED, a["teacher_id"], w.clock.now())])
    return {"assignment_id": assignment_id, "status": "removed", "version": version}


def changed(a: asyncpg.Record, change: ev.AssignmentChange, teacher_id: str, now: datetime) -> ev.AssignmentChanged:
    """The event of an assignment reassigned (to `teacher_id`) or removed."""
    return ev.AssignmentChanged(
        assignment_id=a["assignment_id"],
        campaign_id=a["campaign_id"],
        change=change,
        teacher_id=teacher_id,
        previous_teacher_id=a["teacher_id"],
        family_id=a["family_id"],
        org_path=a["org_path"],
        occurred_at=now,
    )
