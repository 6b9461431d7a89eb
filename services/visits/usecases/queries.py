"""Read side: scoped queries over the service's own tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import asyncpg

from services.visits import store
from services.visits.domain import checklist
from shared import audit, pages, scope
from shared import progress as progress_rules
from shared.auth import ADMINS, Principal, Role
from shared.problems import found


def _record(r: asyncpg.Record) -> dict[str, Any]:
    return dict(r.items())


def _scope(principal: Principal, org_path: str | None) -> str:
    """The subtree to read: the caller's, narrowed by `org_path` when given (403 outside it)."""
    return scope.narrow(principal, org_path)


async def list_campaigns(pool: asyncpg.Pool, principal: Principal, limit: int, cursor: str | None) -> dict[str, Any]:
    """A page of the campaigns covering or inside the caller's subtree, newest first."""
    principal.require(Role.TEACHER, Role.AUDITOR, *ADMINS)
    after = pages.after(cursor, datetime, str)
    rows = await store.campaigns.list_campaigns(pool, principal.org_path, after=after, limit=limit + 1)
    return pages.page([_record(r) for r in rows], limit, lambda c: (c["created_at"], c["campaign_id"]))


async def _visible_campaign(pool: asyncpg.Pool, principal: Principal, campaign_id: str) -> asyncpg.Record:
    principal.require(Role.TEACHER, Role.AUDITOR, *ADMINS)
    row = found(await store.campaigns.get_campaign(pool, campaign_id), "campaign")
    # Visible when the campaign's scope and the caller's subtree overlap.
    if not scope.overlaps(principal.org_path, row["org_path"]):
        raise scope.forbidden("the campaign lies outside your organisation scope")
    return row


async def campaign(pool: asyncpg.Pool, principal: Principal, campaign_id: str) -> dict[str, Any]:
    row = await _visible_campaign(pool, principal, campaign_id)
    items = checklist.load().items(row["checklist_version"])
    return {**_record(row), "checklist": [i.__dict__ for i in items]}


async def assignments(
    pool: asyncpg.Pool,
    principal: Principal,
    campaign_id: str,
    teacher_id: str | None,
    status: str | None,
    org_path: str | None,
    limit: int,
    cursor: str | None,
    changed_since: datetime | None = None,
) -> dict[str, Any]:
    """A page of a campaign's assignments the caller may see, in (teacher, family) order; with `changed_since`, only
    those changed since then, removed ones included (an incremental download)."""
    row = await _visible_campaign(pool, principal, campaign_id)
    if principal.has(*ADMINS, Role.AUDITOR):
        subtree = _scope(principal, org_path)
    else:  # a teacher: only their own families, wherever the families are
        if teacher_id not in (None, principal.staff_id) or not principal.staff_id:
            raise scope.forbidden("teachers see only their own assignments")
        teacher_id = principal.staff_id
        subtree = row["org_path"] if org_path is None else org_path
    after = pages.after(cursor, str, str)
    rows = await store.assignments.list_assignments(
        pool,
        campaign_id,
        scope=subtree,
        teacher_id=teacher_id,
        status=status,
        changed_since=changed_since,
        after=after,
        limit=limit + 1,
    )
    return pages.page([_record(r) for r in rows], limit, lambda a: (a["teacher_id"], a["family_id"]))


def _unit(r: asyncpg.Record, campaign: asyncpg.Record, today: date) -> dict[str, Any]:
    d = _record(r)
    d["by_mode"] = {m: d.pop(m) for m in ("in_home", "online", "phone", "at_school")}
    plan = progress_rules.against_plan(d["assigned"], d["completed"], campaign["starts_on"], campaign["ends_on"], today)
    return {**d, "expected": plan.expected, "behind": plan.behind, "behind_by": plan.behind_by}


async def progress(
    pool: asyncpg.Pool, principal: Principal, campaign_id: str, level: str, org_path: str | None, today: date
) -> dict[str, Any]:
    """A campaign's progress per teacher, class, grade, school or district against its plan: administrators and
    auditors over their subtree, a teacher over their own assignments only."""
    row = await _visible_campaign(pool, principal, campaign_id)
    teacher_id: str | None = None
    if principal.has(*ADMINS, Role.AUDITOR):
        subtree = _scope(principal, org_path)
    else:  # a teacher: their own assignments, wherever the families are
        if not principal.staff_id:
            raise scope.forbidden("a teacher's token must name the teacher (staff_id)")
        teacher_id, subtree = principal.staff_id, row["org_path"] if org_path is None else org_path
    rows = await store.assignments.list_progress(pool, campaign_id, level=level, scope=subtree, teacher_id=teacher_id)
    units = [_unit(r, row, today) for r in rows]
    totals = {k: sum(u[k] for u in units) for k in ("assigned", "completed", "missed", "outstanding", "scheduled")}
    behind = sum(1 for u in units if u["behind"])
    return {"campaign_id": campaign_id, "by": level, "today": today, "totals": totals, "behind": behind, "units": units}


MY_OPEN_LIMIT = 500


async def my_assignments(pool: asyncpg.Pool, principal: Principal, today: date) -> dict[str, Any]:
    """The calling teacher's launched campaigns with done/target, what is left and the plan, and the families
    still to visit."""
    principal.require(Role.TEACHER)
    if not principal.staff_id:
        raise scope.forbidden("a teacher's token must name the teacher (staff_id)")
    campaigns = []
    for r in await store.assignments.list_teacher_progress(pool, principal.staff_id):
        plan = progress_rules.against_plan(r["target"], r["done"], r["starts_on"], r["ends_on"], today)
        campaigns.append({**_record(r), "expected": plan.expected, "behind": plan.behind})
    open_rows = await store.assignments.list_open_assignments_of(pool, principal.staff_id, MY_OPEN_LIMIT)
    return {
        "teacher_id": principal.staff_id,
        "today": today,
        "campaigns": campaigns,
        "open": [_record(r) for r in open_rows],
    }


async def visit(pool: asyncpg.Pool, principal: Principal, visit_id: str) -> dict[str, Any]:
    """A visit with its checklist and findings; the read is audited in the same transaction."""
    principal.require(Role.TEACHER, Role.AUDITOR, *ADMINS)
    async with audit.reading(pool, principal, "visit") as read:
        conn = read.conn
        row = found(await store.visits.get_visit(conn, visit_id), "visit")
        own = principal.has(Role.TEACHER) and principal.staff_id == row["teacher_id"]
        if not own and not (principal.has(Role.AUDITOR, *ADMINS) and scope.covers(principal, row["org_path"])):
            raise scope.forbidden("not a visit you may read")
        labels = {i.id: i for i in checklist.load().items(row["checklist_version"])}
        doc = _record(row)
        doc["checklist"] = [
            {**a, "zh": labels[a["item_id"]].zh, "en": labels[a["item_id"]].en} if a["item_id"] in labels else a
            for a in row["checklist"]
        ]
        doc["findings"] = [_record(f) for f in await store.visits.list_visit_findings(conn, visit_id)]
        subjects = [row["family_id"], *(f["student_id"] for f in doc["findings"])]
        read.of(visit_id, row["org_path"], subjects, {f["student_id"]: f["org_path"] for f in doc["findings"]})
    return doc
