"""Campaigns: create, launch (generates the assignments), close; each in the caller's transaction, events with it."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

import asyncpg

from services.visits import store
from services.visits.domain import checklist, planning
from services.visits.schemas import CampaignIn
from shared import scope
from shared.auth import ADMINS
from shared.contracts import visits as ev
from shared.ids import new_id, new_ids
from shared.outbox import add_bulk, add_events
from shared.problems import conflict, found, invalid
from shared.writes import Write


def campaign_doc(row: asyncpg.Record) -> dict[str, Any]:
    """A campaign as the API shows it."""
    return dict(row.items())


async def create_campaign(w: Write, body: CampaignIn, default_target: int) -> dict[str, Any]:
    """A draft campaign; the checklist version in force is recorded on it (its creation time is the database's: the
    lists' newest-first order is the order of creation, also under a test's fixed clock)."""
    w.principal.require(*ADMINS)
    scope.require(w.principal, body.org_path)
    config = checklist.load()
    version = body.checklist_version or config.current
    if version not in config.versions:
        raise invalid("/checklist_version", f"unknown checklist version; known: {', '.join(config.versions)}")
    row = await store.campaigns.insert_campaign(
        w.conn,
        {
            "campaign_id": new_id(),
            "name": body.name,
            "org_path": body.org_path.rstrip("/"),
            "starts_on": body.starts_on,
            "ends_on": body.ends_on,
            "target_per_teacher": body.target_per_teacher or default_target,
            "required_modes": sorted({m.value for m in body.required_modes}),
            "checklist_version": version,
            "created_by": w.principal.subject,
        },
    )
    return campaign_doc(row)


def require_step(status: str, step: str) -> None:
    """409 unless a campaign in `status` allows `step` (the rule: `planning.campaign_refuses`)."""
    refused = planning.campaign_refuses(status, step)
    if refused is not None:
        raise conflict(refused)


async def _campaign_for_change(w: Write, campaign_id: str, step: str) -> asyncpg.Record:
    """The campaign locked, after the caller's access, still at the version `If-Match` names (else 412) and in the
    state `step` needs (else 409)."""
    w.principal.require(*ADMINS)
    row = found(await store.campaigns.get_campaign(w.conn, campaign_id, lock=True), "campaign")
    scope.require(w.principal, row["org_path"])
    w.check(row["version"])
    require_step(row["status"], step)
    return row


def build_plan(
    students: list[asyncpg.Record],
    teachers: list[asyncpg.Record],
    target: int,
    loads: dict[str, int] | None = None,
) -> planning.Plan:
    """Families from the student copy (grouped, children in id order) and teachers, through the pure planner
    (`loads`: the families the teachers already have in the campaign)."""
    kids: dict[str, list[planning.StudentPlace]] = defaultdict(list)
    for s in students:
        kids[s["family_id"]].append(planning.StudentPlace(s["student_id"], s["class_id"], s["org_path"]))
    families = [
        planning.Family(fid, tuple(ss) if len(ss) == 1 else tuple(sorted(ss, key=lambda s: s.student_id)))
        for fid, ss in kids.items()
    ]
    staff = [
        planning.Teacher(
            staff_id=t["staff_id"],
            school_path=planning.school_path(t["org_path"]),
            head_class_id=t["head_class_id"],
            class_ids=frozenset(t["class_ids"] or ()),
        )
        for t in teachers
    ]
    return planning.generate_assignments(families, staff, target, loads)


# Students planned per group at launch (`planning.planning_groups`: whole schools, linked ones together). A launch
# once read the whole city's students, planned every family and held every assignment (184,000 families at scale 1):
# the process's Python heap reached 145 MiB at scale 0.5 and, fragmented, never gave it back. Group by group, the
# students stream in through a cursor in group order, and each group's plan is written (COPY of its assignments,
# their events into the outbox) before the next is read: memory is bounded by a group, and the launch is still one
# transaction (all its assignments or none). The plan is the same as the whole scope's (see `planning_groups`).
LAUNCH_CHUNK = 10_000
ANALYZE_AFTER = 10_000  # assignments written by one launch (migration 008 says why)


async def launch_campaign(w: Write, campaign_id: str) -> dict[str, Any]:
    """draft → launched: generate the assignments from the directory copy and publish them with the launch."""
    camp = await _campaign_for_change(w, campaign_id, "launch")
    scope = camp["org_path"]
    now = w.clock.now()
    items = checklist.load().items(camp["checklist_version"])
    launched = ev.CampaignLaunched(
        campaign_id=campaign_id,
        name=camp["name"],
        org_path=scope,
        starts_on=camp["starts_on"],
        ends_on=camp["ends_on"],
        target_per_teacher=camp["target_per_teacher"],
        checklist_version=camp["checklist_version"],
        checklist_item_ids=[i.id for i in items],
        occurred_at=now,
    )
    await add_events(w.conn, [launched])  # before its assignments' events, as consumers read them
    of_class, schools = await _planning_groups(w.conn, scope)
    # The teachers who can visit, by school: read once (a tenth of the students' rows), each group takes its schools'.
    staff: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for t in await store.directory.list_teachers_in_scope(w.conn, scope):
        staff[planning.school_path(t["org_path"])].append(t)
    loads: dict[str, int] = {}
    unassigned: list[tuple[str, str]] = []  # (first school, family): the whole scope's order

    async def plan(students: list[asyncpg.Record]) -> None:
        teachers = [t for school in schools[students[0]["grp"]] for t in staff.get(school, ())]
        planned = build_plan(students, teachers, camp["target_per_teacher"])
        for start in range(0, len(planned.assignments), LAUNCH_CHUNK):
            await _assign(w.conn, campaign_id, planned.assignments[start : start + LAUNCH_CHUNK], now)
        loads.update(planned.loads())
        if planned.unassigned:
            first = {s["family_id"]: planning.school_path(s["org_path"]) for s in reversed(students)}
            unassigned.extend((first[f], f) for f in planned.unassigned)

    group: list[asyncpg.Record] = []
    async for rows in store.directory.list_students_by_group(w.conn, scope, of_class, LAUNCH_CHUNK):
        for r in rows:
            if group and r["grp"] != group[0]["grp"]:
                await plan(group)
                group = []
            group.append(r)
    if group:
        await plan(group)
    if sum(loads.values()) >= ANALYZE_AFTER:  # the statistics know the campaign before its first page is read
        await store.assignments.analyze_assignments(w.conn)
    unassigned.sort()
    row = await store.campaigns.update_campaign_launched(w.conn, campaign_id, len(unassigned), now)
    return {
        **campaign_doc(row),
        "assignments": sum(loads.values()),
        "teachers": len(loads),
        "max_per_teacher": max(loads.values(), default=0),
        "unassigned_family_ids": [f for _, f in unassigned[:100]],
    }


async def _planning_groups(conn: asyncpg.Connection, scope: str) -> tuple[dict[str, int], dict[int, list[str]]]:
    """The launch's groups (`planning.planning_groups` over the scope's schools): class path → group, and each group's
    schools. Read per class (a few thousand rows), cut to schools here."""
    classes = await store.directory.list_class_sizes(conn, scope)
    sizes: dict[str, int] = defaultdict(int)
    for c in classes:
        sizes[planning.school_path(c["org_path"])] += c["students"]
    links = await store.directory.list_class_links(conn, scope)
    groups = planning.planning_groups(
        sizes, [[planning.school_path(p) for p in r["paths"]] for r in links], LAUNCH_CHUNK
    )
    schools: dict[int, list[str]] = defaultdict(list)
    for school, number in groups.items():
        schools[number].append(school)
    return {c["org_path"]: groups[planning.school_path(c["org_path"])] for c in classes}, schools


async def _assign(conn: asyncpg.Connection, campaign_id: str, planned: list[planning.Planned], now: datetime) -> None:
    """One chunk of a launch: its assignments (COPY) and their AssignmentMade events (the kit's bulk path)."""
    ids = new_ids(len(planned))
    await store.assignments.insert_assignments(
        conn,
        (
            (aid, campaign_id, p.teacher_id, p.family_id, p.student_ids, p.org_path,
             planning.school_path(p.org_path), planning.district_path(p.org_path), "assigned")
            for aid, p in zip(ids, planned, strict=True)
        ),
    )  # fmt: skip
    await add_bulk(
        conn,
        (
            (
                ev.AssignmentMade,
                {
                    "assignment_id": aid,
                    "campaign_id": campaign_id,
                    "teacher_id": p.teacher_id,
                    "family_id": p.family_id,
                    "student_ids": p.student_ids,
                    "org_path": p.org_path,
                    "occurred_at": now,
                },
            )
            for aid, p in zip(ids, planned, strict=True)
        ),
    )


async def close_campaign(w: Write, campaign_id: str) -> dict[str, Any]:
    """launched → closed (412 when `If-Match` names another version)."""
    await _campaign_for_change(w, campaign_id, "close")
    now = w.clock.now()
    row = await store.campaigns.update_campaign_closed(w.conn, campaign_id, now)
    await add_events(w.conn, [ev.CampaignClosed(campaign_id=campaign_id, org_path=row["org_path"], occurred_at=now)])
    return campaign_doc(row)
