"""Referral use cases: asking departments, the departments' answers, and what a department may read."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.outreach import domain
from services.outreach.domain import ReferralState
from services.outreach.schemas import ReferralQuery
from services.outreach.settings import Rules
from services.outreach.store import cases, directory, groups, referrals
from services.outreach.usecases import notifications
from shared import audit, pages, scope
from shared.auth import ADMINS, Principal, Role
from shared.contracts.common import Category, Department, Severity
from shared.contracts.outreach import (
    ReferralAccepted,
    ReferralAcknowledged,
    ReferralDeclined,
    ReferralRequested,
    ReferralResolved,
)
from shared.ids import new_id
from shared.problems import conflict, not_found
from shared.writes import Write

EVENT_FOR = {
    ReferralState.ACKNOWLEDGED: ReferralAcknowledged,
    ReferralState.ACCEPTED: ReferralAccepted,
    ReferralState.DECLINED: ReferralDeclined,
    ReferralState.RESOLVED: ReferralResolved,
}


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
        "acknowledge_by": domain.acknowledge_by(rules, now),
    }


def referral_facts(r: Any, occurred_at: datetime) -> dict[str, Any]:
    """The public facts of a referral event, from its row."""
    return {
        "referral_id": r["referral_id"],
        "case_id": r["case_id"],
        "department": r["department"],
        "category": r["category"],
        "urgency": r["urgency"],
        "org_path": r["org_path"],
        "occurred_at": occurred_at,
    }


async def request_referrals(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> list[ReferralRequested]:
    """Ask departments for help (see `referral_row`); events for the referrals actually created."""
    return [
        ReferralRequested(**referral_facts(r, r["requested_at"]), acknowledge_by=r["acknowledge_by"])
        for r in await referrals.insert_referrals(conn, rows)
    ]


def may_see(principal: Principal, ref: Any) -> bool:
    """The addressed department's partners, or administrators over the child's school."""
    if principal.has(Role.DEPARTMENT_PARTNER):
        return principal.department == ref["department"] and scope.covers(principal, ref["org_path"])
    return principal.has(*ADMINS) and scope.covers(principal, ref["org_path"])


async def list_referrals(
    pool: asyncpg.Pool, principal: Principal, query: ReferralQuery, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of a department partner's own referrals (within its jurisdiction), or of those in an administrator's
    subtree, newest first."""
    if principal.has(Role.DEPARTMENT_PARTNER):
        if not principal.department:
            raise scope.forbidden("the department partner token carries no department")
        department: str | None = principal.department
    elif principal.has(*ADMINS):
        department = None
    else:
        raise scope.forbidden("requires a department partner or administrator role")
    path = scope.narrow(principal, query.org_path)
    after = pages.after(cursor, datetime, str)
    rows = await referrals.list_referrals(
        pool, department=department, org_path=path, state=query.state, after=after, limit=limit + 1
    )
    return pages.page([dict(x) for x in rows], limit, lambda r: (r["requested_at"], r["referral_id"]))


async def get_referral_detail(
    pool: asyncpg.Pool, principal: Principal, rules: Rules, referral_id: str
) -> dict[str, Any]:
    """What the department needs: the referral, the child's placement and the register group the referral is about,
    never the case's other categories or groups (an audited read)."""
    async with audit.reading(pool, principal, "referral") as read:
        conn = read.conn
        ref = await referrals.get_referral(conn, referral_id)
        if ref is None or not may_see(principal, ref):
            raise not_found("referral")
        c = await cases.get_case(conn, ref["case_id"])
        referred = domain.referred_groups(rules, [ref["category"]])
        in_groups = await groups.list_student_groups(conn, ref["student_id"], sorted(referred))
        living = await directory.get_living_arrangement(conn, ref["student_id"])
        read.of(referral_id, ref["class_path"], [ref["student_id"]])
        return {
            **dict(ref),
            "child": {
                "student_id": ref["student_id"],
                "class_path": ref["class_path"],
                "school_path": domain.school_path(ref["class_path"]),
                "living_arrangement": living,
                "groups": in_groups,
            },
            "case": {
                **{k: c[k] for k in ("case_id", "state", "opened_at", "contact_due", "first_contacted_at")},
                "carers": [dict(x) for x in await cases.list_case_carers(conn, c["case_id"])],
            },
        }


async def answer(w: Write, rules: Rules, referral_id: str, target: ReferralState, note: str | None) -> dict[str, Any]:
    """The addressed department moves its referral on (acknowledge, accept, decline, resolve), with a note (412
    when `If-Match` names another version)."""
    now = w.clock.now()
    ref = await referrals.get_referral(w.conn, referral_id, lock=True)
    # Another department's referral answers like a missing one: it is not disclosed.
    if ref is None or not (w.principal.has(Role.DEPARTMENT_PARTNER) and may_see(w.principal, ref)):
        raise not_found("referral")
    w.check(ref["version"])
    refusal = domain.referral_refusal(ReferralState(ref["state"]), target)
    if refusal:
        raise conflict(refusal)
    await referrals.update_referral_state(
        w.conn,
        referral_id,
        target,
        {"at": now.isoformat(), "state": target, "by": w.principal.subject, "note": note},
        now,
    )
    event: Any = EVENT_FOR[target](**referral_facts(ref, now))
    if target == ReferralState.ACCEPTED:  # accepted: to be resolved in time, or chased up the tree
        due = domain.resolve_by(rules, now)
        await referrals.update_referral_accepted(w.conn, referral_id, due)
        event = ReferralAccepted(**referral_facts(ref, now), resolve_by=due)
    await notifications.publish(w.conn, [(None, [event])])
    return dict(await referrals.get_referral(w.conn, referral_id))
