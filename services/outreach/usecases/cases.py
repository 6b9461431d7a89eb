"""Care-case use cases: lists, the audited detail, contacts, state changes, two-person closure, manual referrals.

Every state change goes through `domain.transition`; every case event states the case's `overdue` after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from services.outreach import domain
from services.outreach.domain import Action, CaseState, ClosureDecision
from services.outreach.schemas import CaseQuery, CloseIn, ContactIn, ReferralIn
from services.outreach.settings import Rules
from services.outreach.store import cases, referrals
from services.outreach.usecases.referrals import referral_row, request_referrals
from shared import audit, pages, scope
from shared.auth import ADMINS, Principal
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import (
    CaseClosed,
    CaseClosureProposed,
    CaseClosureRejected,
    CaseContactLogged,
)
from shared.db import Conn
from shared.ids import new_id
from shared.outbox import add_events
from shared.problems import conflict, invalid, not_found
from shared.writes import Write


def case_facts(c: Any, now: datetime, *, overdue: bool | None = None) -> dict[str, Any]:
    """The common facts of a case event, from the case row (`overdue` as it is after the change)."""
    return {
        "case_id": c["case_id"],
        "student_id": c["student_id"],
        "org_path": c["org_path"],
        "risk_level": Severity(c["risk_level"]),
        "categories": [Category(x) for x in c["categories"]],
        "occurred_at": now,
        "overdue": c["overdue"] if overdue is None else overdue,
    }


def _refused(exc: domain.TransitionRefused) -> Exception:
    return conflict(str(exc))


async def require_case_access(conn: Conn, principal: Principal, case: Any) -> None:
    """Admins inside whose subtree the case lies, or one of the case's carers; 404 when the case is missing."""
    if case is None:
        raise not_found("case")
    if principal.has(*ADMINS) and scope.covers(principal, case["org_path"]):
        return
    if (
        principal.staff_id
        and principal.has(*domain.CARER_ROLES)
        and await cases.get_case_carer(conn, case["case_id"], principal.staff_id)
    ):
        return
    raise scope.forbidden("only the case's carers and administrators over its school may see or act on it")


async def _locked_case(w: Write, case_id: str) -> asyncpg.Record:
    """The case, locked, when the caller may act on it and it is still at the version `If-Match` names (412)."""
    c = await cases.get_case(w.conn, case_id, lock=True)
    await require_case_access(w.conn, w.principal, c)
    w.check(c["version"])
    return c


async def list_cases(
    pool: asyncpg.Pool, principal: Principal, query: CaseQuery, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of the cases in the caller's subtree (admins) or of those the caller cares for (teachers,
    `mine=true`), newest first."""
    if principal.has(*ADMINS) and not query.mine:
        path, carer = scope.narrow(principal, query.org_path), None
    elif principal.has(*domain.CARER_ROLES) and principal.staff_id:
        path, carer = "/", principal.staff_id
    else:
        raise scope.forbidden("requires an administrator role or a carer's teacher token")
    after = pages.after(cursor, datetime, str)
    filters = query.model_dump(exclude={"org_path", "mine"})
    rows = await cases.list_cases(pool, org_path=path, carer_staff_id=carer, after=after, limit=limit + 1, **filters)
    return pages.page([dict(x) for x in rows], limit, lambda c: (c["opened_at"], c["case_id"]))


async def get_case_detail(pool: asyncpg.Pool, principal: Principal, case_id: str) -> dict[str, Any]:
    """One case with its plan, carers, contacts, escalations and referrals; the read is audited."""
    async with audit.reading(pool, principal, "case") as read:
        conn = read.conn
        c = await cases.get_case(conn, case_id)
        await require_case_access(conn, principal, c)
        read.of(case_id, c["org_path"], [c["student_id"]])
        pending = await cases.get_pending_closure(conn, case_id)
        return {
            **dict(c),
            "carers": [dict(x) for x in await cases.list_case_carers(conn, case_id)],
            "findings": [dict(x) for x in await cases.list_case_findings(conn, case_id)],
            "contacts": [dict(x) for x in await cases.list_case_contacts(conn, case_id)],
            "escalations": [dict(x) for x in await cases.list_case_escalations(conn, case_id)],
            "referrals": [dict(x) for x in await referrals.list_case_referrals(conn, case_id)],
            "pending_closure": dict(pending) if pending else None,
            "closure_pending": pending is not None,
        }


async def log_contact(w: Write, rules: Rules, case_id: str, body: ContactIn) -> dict[str, Any]:
    """Log a contact (date, mode, who, outcome, next review); the first one meets the deadline and ends overdue,
    and every one sets the next review (`domain.review_due`), the deadline the scheduler watches from then on."""
    now = w.clock.now()
    if (fault := domain.contact_fault(body.contacted_at, body.next_review_at, now)) is not None:
        raise invalid(*fault)
    c = await _locked_case(w, case_id)
    try:
        state = domain.transition(CaseState(c["state"]), Action.CONTACT)
    except domain.TransitionRefused as exc:
        raise _refused(exc) from exc
    contact_id = new_id()
    first = c["first_contacted_at"] is None
    await cases.insert_contact(
        w.conn,
        case_id,
        {
            "contact_id": contact_id,
            "contacted_at": body.contacted_at,
            "mode": str(body.mode),
            "staff_id": w.principal.staff_id,
            "logged_by": w.principal.subject,
            "outcome": body.outcome,
            "next_review_at": body.next_review_at,
        },
    )
    latest = max(body.contacted_at, c["last_contacted_at"] or body.contacted_at)
    review = domain.review_due(rules, Severity(c["risk_level"]), latest, body.next_review_at)
    await cases.update_case_contacted(w.conn, case_id, state, body.contacted_at, review)
    event = CaseContactLogged(
        **case_facts(c, now, overdue=domain.overdue_after(Action.CONTACT, c["overdue"])),
        contact_id=contact_id,
        mode=str(body.mode),
        contacted_at=body.contacted_at,
        first_contact=first,
        next_review_at=review,
    )
    await add_events(w.conn, [event])
    return {"contact_id": contact_id, "case_id": case_id, "first_contact": first, "next_review_at": review}


async def change_state(w: Write, case_id: str, wanted: CaseState) -> dict[str, Any]:
    """Move a case to in_progress or monitoring by hand."""
    c = await _locked_case(w, case_id)
    try:
        state = domain.transition(CaseState(c["state"]), domain.REQUESTED_STATES[wanted])
    except domain.TransitionRefused as exc:
        raise _refused(exc) from exc
    version = await cases.update_case_state(w.conn, case_id, state)
    return {"case_id": case_id, "state": state, "version": version}


async def propose_closure(w: Write, case_id: str, body: CloseIn) -> dict[str, Any]:
    """Propose closing a case (its carers or administrators over it); a second person approves or rejects."""
    now = w.clock.now()
    c = await _locked_case(w, case_id)
    pending = await cases.get_pending_closure(w.conn, case_id)
    refusal = domain.closure_proposal_refusal(CaseState(c["state"]), pending is not None)
    if refusal:
        raise conflict(refusal)
    role = domain.acting_role(w.principal.roles)
    proposal = {
        "proposal_id": new_id(),
        "reason_code": body.reason_code,
        "note": body.note,
        "proposed_by": w.principal.subject,
        "proposed_by_staff_id": w.principal.staff_id,
        "proposed_by_role": role,
        "proposed_at": now,
    }
    await cases.insert_closure_proposal(w.conn, case_id, proposal)
    event = CaseClosureProposed(
        **case_facts(c, now), proposal_id=proposal["proposal_id"], reason_code=body.reason_code, proposed_by_role=role
    )
    await add_events(w.conn, [event])
    return {
        "case_id": case_id,
        "proposal_id": proposal["proposal_id"],
        "state": c["state"],
        "reason_code": body.reason_code,
        "proposed_by_role": role,
        "proposed_at": now,
    }


async def decide_closure(
    w: Write, rules: Rules, case_id: str, decided: ClosureDecision, note: str | None
) -> dict[str, Any]:
    """A second person (an administrator over the case, not the proposer) approves or rejects the closure."""
    now = w.clock.now()
    c = await _locked_case(w, case_id)
    p = await cases.get_pending_closure(w.conn, case_id)
    if p is None:
        raise conflict("no closure of this case is waiting for a decision")
    refusal = domain.closure_decision_refusal(
        rules, w.principal.roles, w.principal.subject, p["proposed_by"], w.principal.staff_id, p["proposed_by_staff_id"]
    )
    if refusal:
        raise scope.forbidden(refusal)
    role = domain.closing_role(rules, w.principal.roles)
    await cases.update_closure_decision(
        w.conn,
        p["proposal_id"],
        {
            "decision": decided,
            "decided_by": w.principal.subject,
            "decided_by_role": role,
            "decided_at": now,
            "note": note,
        },
    )
    state = CaseState(c["state"])
    event: Any
    if decided == ClosureDecision.APPROVED:
        try:
            state = domain.transition(state, Action.CLOSE)
        except domain.TransitionRefused as exc:
            raise _refused(exc) from exc
        closing = {
            "closed_at": now,
            "reason_code": p["reason_code"],
            "note": p["note"],
            "closed_by": w.principal.subject,
            "closed_by_role": role,
        }
        await cases.update_case_closed(w.conn, case_id, state, closing)
        event = CaseClosed(
            **case_facts(c, now, overdue=domain.overdue_after(Action.CLOSE, c["overdue"])),
            reason_code=p["reason_code"],
            approved_by_role=role,
        )
    else:
        event = CaseClosureRejected(**case_facts(c, now), proposal_id=p["proposal_id"], rejected_by_role=role)
    await add_events(w.conn, [event])
    return {
        "case_id": case_id,
        "proposal_id": p["proposal_id"],
        "decision": decided,
        "state": state,
        "decided_by_role": role,
        "proposed_by_role": p["proposed_by_role"],
    }


async def refer(w: Write, rules: Rules, case_id: str, body: ReferralIn) -> dict[str, Any]:
    """Ask a department for help with a case by hand (mapped departments are asked automatically)."""
    now = w.clock.now()
    c = await _locked_case(w, case_id)
    if c["state"] == CaseState.CLOSED:
        raise conflict("the case is closed")
    urgency = body.urgency or Severity(c["risk_level"])
    row = referral_row(rules, case_id, c["student_id"], c["org_path"], body.department, body.category, urgency, now)
    events = await request_referrals(w.conn, [row])
    if not events:
        raise conflict("this department already has an open referral for this case and category")
    await add_events(w.conn, events)
    ids = {getattr(e, "referral_id", None) for e in events}
    opened = [dict(x) for x in await referrals.list_case_referrals(w.conn, case_id) if x["referral_id"] in ids]
    return {"case_id": case_id, "items": opened}
