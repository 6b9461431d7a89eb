"""Use cases: each runs inside the caller's transaction and writes its events to the outbox with its state."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.visits import checklist, domain, store
from services.visits.schemas import AssignmentIn, CampaignIn
from shared import scope
from shared.auth import ADMINS, Principal
from shared.contracts import visits as ev
from shared.outbox import add_events
from shared.problems import conflict, invalid, not_found


def new_id() -> str:
    return str(uuid.uuid4())


def campaign_doc(row: asyncpg.Record) -> dict[str, Any]:
    """A campaign as the API shows it."""
    return dict(row.items())


# ------------------------------------------------------------------------------------------- campaigns


async def create_campaign(
    conn: asyncpg.Connection, principal: Principal, body: CampaignIn, default_target: int
) -> dict[str, Any]:
    """A draft campaign; the checklist version in force is recorded on it."""
    principal.require(*ADMINS)
    scope.require(principal, body.org_path)
    config = checklist.load()
    version = body.checklist_version or config.current
    if version not in config.versions:
        raise invalid("/checklist_version", f"unknown checklist version; known: {', '.join(config.versions)}")
    row = await store.insert_campaign(
        conn,
        {
            "campaign_id": new_id(),
            "name": body.name,
            "org_path": body.org_path.rstrip("/"),
            "starts_on": body.starts_on,
            "ends_on": body.ends_on,
            "target_per_teacher": body.target_per_teacher or default_target,
            "required_modes": sorted({m.value for m in body.required_modes}),
            "checklist_version": version,
            "created_by": principal.subject,
        },
    )
    return campaign_doc(row)


async def _campaign_for_change(conn: asyncpg.Connection, principal: Principal, campaign_id: str) -> asyncpg.Record:
    principal.require(*ADMINS)
    row = await store.get_campaign(conn, campaign_id, lock=True)
    if row is None:
        raise not_found("campaign")
    scope.require(principal, row["org_path"])
    return row


def build_plan(students: list[asyncpg.Record], teachers: list[asyncpg.Record], target: int) -> domain.Plan:
    """Families from the student copy (grouped, children in id order) and teachers, through the pure planner."""
    kids: dict[str, list[domain.StudentPlace]] = defaultdict(list)
    for s in students:
        kids[s["family_id"]].append(domain.StudentPlace(s["student_id"], s["class_id"], s["org_path"]))
    families = [domain.Family(fid, tuple(sorted(ss, key=lambda s: s.student_id))) for fid, ss in kids.items()]
    staff = [
        domain.Teacher(
            staff_id=t["staff_id"],
            school_path=domain.school_path(t["org_path"]),
            head_class_id=t["head_class_id"],
            class_ids=frozenset(t["class_ids"] or ()),
        )
        for t in teachers
    ]
    return domain.generate_assignments(families, staff, target)


async def launch_campaign(conn: asyncpg.Connection, principal: Principal, campaign_id: str) -> dict[str, Any]:
    """draft → launched: generate the assignments from the directory copy and publish them with the launch."""
    camp = await _campaign_for_change(conn, principal, campaign_id)
    if camp["status"] != "draft":
        raise conflict(f"the campaign is {camp['status']}; only a draft can be launched")
    scope = camp["org_path"]
    plan = build_plan(
        await store.students_in_scope(conn, scope),
        await store.teachers_in_scope(conn, scope),
        camp["target_per_teacher"],
    )
    now = datetime.now(UTC)
    rows = []
    events: list[Any] = []
    for p in plan.assignments:
        aid = new_id()
        rows.append(
            (aid, campaign_id, p.teacher_id, p.family_id, list(p.student_ids), p.org_path,
             domain.school_path(p.org_path), domain.district_path(p.org_path), "assigned")
        )  # fmt: skip
        events.append(
            ev.AssignmentMade(
                assignment_id=aid,
                campaign_id=campaign_id,
                teacher_id=p.teacher_id,
                family_id=p.family_id,
                student_ids=list(p.student_ids),
                org_path=p.org_path,
                occurred_at=now,
            )
        )
    await store.insert_assignments(conn, rows)
    row = await store.set_campaign_launched(conn, campaign_id, len(plan.unassigned))
    items = checklist.load().items(row["checklist_version"])
    launched = ev.CampaignLaunched(
        campaign_id=campaign_id,
        name=row["name"],
        org_path=scope,
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        target_per_teacher=row["target_per_teacher"],
        checklist_version=row["checklist_version"],
        checklist_item_ids=[i.id for i in items],
        occurred_at=now,
    )
    await add_events(conn, [launched, *events])
    loads = plan.loads()
    return {
        **campaign_doc(row),
        "assignments": len(plan.assignments),
        "teachers": len(loads),
        "max_per_teacher": max(loads.values(), default=0),
        "unassigned_family_ids": plan.unassigned[:100],
    }


async def close_campaign(conn: asyncpg.Connection, principal: Principal, campaign_id: str) -> dict[str, Any]:
    """launched → closed."""
    camp = await _campaign_for_change(conn, principal, campaign_id)
    if camp["status"] != "launched":
        raise conflict(f"the campaign is {camp['status']}; only a launched campaign can be closed")
    row = await store.set_campaign_closed(conn, campaign_id)
    await add_events(
        conn, [ev.CampaignClosed(campaign_id=campaign_id, org_path=row["org_path"], occurred_at=datetime.now(UTC))]
    )
    return campaign_doc(row)


# ------------------------------------------------------------------------------- hand-made assignments


async def _teacher_for(conn: asyncpg.Connection, teacher_id: str, campaign_path: str, pointer: str) -> asyncpg.Record:
    staff = await store.get_staff(conn, teacher_id)
    if staff is None or not staff["active"]:
        raise invalid(pointer, "no such active staff member")
    if not scope.within(staff["org_path"], campaign_path):
        raise invalid(pointer, "the teacher is outside the campaign's scope")
    return staff


async def add_assignment(
    conn: asyncpg.Connection, principal: Principal, campaign_id: str, body: AssignmentIn
) -> dict[str, Any]:
    """Assign a family that has no assignment in this campaign to a teacher by hand."""
    principal.require(*ADMINS)
    camp = await store.get_campaign(conn, campaign_id)
    if camp is None:
        raise not_found("campaign")
    if camp["status"] != "launched":
        raise conflict(f"the campaign is {camp['status']}; assignments change only while it is launched")
    children = await store.family_children(conn, body.family_id, camp["org_path"])
    if not children:
        raise invalid("/family_id", "no family with children in the campaign's scope")
    org_path = children[0]["org_path"]
    scope.require(principal, *(c["org_path"] for c in children))  # every child's class: all are visited
    staff = await _teacher_for(conn, body.teacher_id, camp["org_path"], "/teacher_id")
    scope.require(principal, staff["org_path"])
    aid = new_id()
    student_ids = [c["student_id"] for c in children]
    try:
        async with conn.transaction():  # savepoint: a duplicate becomes a 409, not a broken transaction
            await store.insert_assignments(
                conn,
                [(aid, campaign_id, body.teacher_id, body.family_id, student_ids, org_path,
                  domain.school_path(org_path), domain.district_path(org_path), "assigned")],
            )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        raise conflict("the family already has an assignment in this campaign") from exc
    await add_events(
        conn,
        [
            ev.AssignmentMade(
                assignment_id=aid,
                campaign_id=campaign_id,
                teacher_id=body.teacher_id,
                family_id=body.family_id,
                student_ids=student_ids,
                org_path=org_path,
                occurred_at=datetime.now(UTC),
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


async def _assignment_for_change(conn: asyncpg.Connection, principal: Principal, assignment_id: str) -> asyncpg.Record:
    principal.require(*ADMINS)
    a = await store.get_assignment(conn, assignment_id, lock=True)
    if a is None:
        raise not_found("assignment")
    scope.require(principal, a["org_path"])
    if a["campaign_status"] != "launched":
        raise conflict(f"the campaign is {a['campaign_status']}; assignments change only while it is launched")
    if a["status"] in ("completed", "removed"):
        raise conflict(f"the assignment is {a['status']}")
    return a


async def reassign(
    conn: asyncpg.Connection, principal: Principal, assignment_id: str, teacher_id: str
) -> dict[str, Any]:
    """Give an open assignment to another teacher of the campaign's scope."""
    a = await _assignment_for_change(conn, principal, assignment_id)
    staff = await _teacher_for(conn, teacher_id, a["campaign_path"], "/teacher_id")
    scope.require(principal, staff["org_path"])
    if teacher_id == a["teacher_id"]:
        raise invalid("/teacher_id", "the assignment already belongs to this teacher")
    await store.set_assignment_teacher(conn, assignment_id, teacher_id)
    await add_events(conn, [_changed(a, ev.AssignmentChange.REASSIGNED, teacher_id)])
    return {"assignment_id": assignment_id, "teacher_id": teacher_id, "previous_teacher_id": a["teacher_id"]}


async def remove(conn: asyncpg.Connection, principal: Principal, assignment_id: str) -> dict[str, Any]:
    """Withdraw an open assignment (the family can then be assigned again by hand)."""
    a = await _assignment_for_change(conn, principal, assignment_id)
    await store.remove_assignment(conn, assignment_id)
    await add_events(conn, [_changed(a, ev.AssignmentChange.REMOVED, a["teacher_id"])])
    return {"assignment_id": assignment_id, "status": "removed"}


def _changed(a: asyncpg.Record, change: ev.AssignmentChange, teacher_id: str) -> ev.AssignmentChanged:
    return ev.AssignmentChanged(
        assignment_id=a["assignment_id"],
        campaign_id=a["campaign_id"],
        change=change,
        teacher_id=teacher_id,
        previous_teacher_id=a["teacher_id"],
        family_id=a["family_id"],
        org_path=a["org_path"],
        occurred_at=datetime.now(UTC),
    )
