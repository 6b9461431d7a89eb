"""Use cases: each runs inside the caller's transaction and writes its events to the outbox with its state."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import ValidationError

from services.visits import checklist, domain, store
from services.visits.schemas import AssignmentIn, CampaignIn, VisitIn
from shared.auth import ADMINS, Principal, Role
from shared.contracts import visits as ev
from shared.outbox import add_events
from shared.problems import Problem, conflict, field_error, invalid, not_found


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
    principal.require_scope(body.org_path)
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
    principal.require_scope(row["org_path"])
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


async def _teacher_for(conn: asyncpg.Connection, teacher_id: str, scope: str, pointer: str) -> asyncpg.Record:
    staff = await store.get_staff(conn, teacher_id)
    if staff is None or not staff["active"]:
        raise invalid(pointer, "no such active staff member")
    if not domain.under(staff["org_path"], scope):
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
    principal.require_scope(org_path)
    staff = await _teacher_for(conn, body.teacher_id, camp["org_path"], "/teacher_id")
    principal.require_scope(staff["org_path"])
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
    principal.require_scope(a["org_path"])
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
    principal.require_scope(staff["org_path"])
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


# ---------------------------------------------------------------------------------------------- visits


@dataclass
class Outcome:
    """The result for one submitted visit: stored (with ids) or rejected (with faults)."""

    index: int
    visit_id: str | None = None
    assignment_id: str | None = None
    status: str | None = None
    finding_ids: list[str] | None = None
    faults: list[domain.Fault] | None = None

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


def parse_item(raw: Any) -> VisitIn | list[domain.Fault]:
    """A batch item as a VisitIn, or its schema faults with pointers inside the item."""
    try:
        return VisitIn.model_validate(raw)
    except ValidationError as exc:
        return [
            domain.Fault("/" + "/".join(str(p) for p in e["loc"]) if e["loc"] else "", e["msg"]) for e in exc.errors()
        ]


def _facts(r: asyncpg.Record) -> domain.AssignmentFacts:
    return domain.AssignmentFacts(
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
    )


async def record_visits(
    conn: asyncpg.Connection, principal: Principal, items: list[VisitIn | list[domain.Fault]]
) -> list[Outcome]:
    """Check and store visits with their findings and events; bad items are reported, good ones kept.

    Round trips whatever the number of items: one locking read, three set-based writes, one outbox insert.
    """
    principal.require(Role.TEACHER, *ADMINS)
    ids = sorted({v.assignment_id for v in items if isinstance(v, VisitIn)})
    facts = {r["assignment_id"]: _facts(r) for r in await store.lock_assignments_for_visits(conn, ids)}
    config = checklist.load()
    now = datetime.now(UTC)
    outcomes: list[Outcome] = []
    visits: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    outcome_rows: dict[str, dict[str, Any]] = {}
    events: list[Any] = []
    for index, v in enumerate(items):
        if not isinstance(v, VisitIn):
            outcomes.append(Outcome(index, faults=v))
            continue
        a = facts.get(v.assignment_id)
        if a is None:
            outcomes.append(Outcome(index, faults=[domain.Fault("/assignment_id", "no such assignment", "not_found")]))
            continue
        if not domain.may_record(principal, a):
            outcomes.append(
                Outcome(index, faults=[domain.Fault("/assignment_id", "not an assignment you may record", "forbidden")])
            )
            continue
        faults = domain.check_visit(v, a, config.items(a.checklist_version))
        if faults:
            outcomes.append(Outcome(index, faults=faults))
            continue
        visit_id = new_id()
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
        facts[a.assignment_id] = domain.AssignmentFacts(**{**a.__dict__, "status": v.status})
        finding_ids: list[str] = []
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
                    checklist=[ev.ChecklistItemAnswer(item_id=c.item_id, answer=c.answer) for c in v.checklist],
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
    await store.insert_visits(conn, visits, findings, list(outcome_rows.values()))
    await add_events(conn, events)
    return outcomes


STATUS_BY_KIND = {"forbidden": 403, "not_found": 404, "conflict": 409}


def single_problem(faults: list[domain.Fault]) -> Problem:
    """The problem for a rejected single visit: the most telling status, every field error."""
    status = next((STATUS_BY_KIND[f.kind] for f in faults if f.kind in STATUS_BY_KIND), 422)
    titles = {403: "Forbidden", 404: "Not found", 409: "Conflict", 422: "Invalid visit"}
    return Problem(
        status,
        titles[status],
        "; ".join(f.detail for f in faults),
        errors=[field_error(f.pointer, f.detail) for f in faults],
    )
