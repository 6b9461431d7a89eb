"""Care-case routes: lists, audited detail, contacts, state changes, closure with approval, manual referrals."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from services.outreach import domain
from services.outreach.api.common import CARER_ROLES, Offset, page, require_case_access, rules, scope_path
from services.outreach.domain import CaseState
from services.outreach.reaction import referral_row, request_referrals
from services.outreach.schemas import (
    CaseDetail,
    CaseSummary,
    CloseIn,
    ClosureDecided,
    ClosureDecisionIn,
    ClosureProposed,
    ContactIn,
    ReferralIn,
    ReferralOut,
    StateIn,
)
from services.outreach.store import cases, referrals
from shared import audit, idempotency, scope
from shared.auth import ADMINS, CurrentPrincipal, Principal, Role
from shared.clock import Clock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CaseClosed, CaseClosureProposed, CaseClosureRejected, CaseContactLogged
from shared.outbox import add_events
from shared.problems import conflict, invalid
from shared.web import Pool

CLOCK_SKEW = timedelta(minutes=5)  # tolerated on client timestamps


def _facts(c: Any, now: Any) -> dict[str, Any]:
    return {
        "case_id": c["case_id"],
        "student_id": c["student_id"],
        "org_path": c["org_path"],
        "risk_level": Severity(c["risk_level"]),
        "categories": [Category(x) for x in c["categories"]],
        "occurred_at": now,
    }


def _acting_role(principal: Principal) -> str:
    """The role a proposer acts in: their highest administrative role, else their teaching role."""
    order = [Role.BUREAU_ADMIN, Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, *CARER_ROLES]
    return next((str(x) for x in order if x in principal.roles), "unknown")


def router(clock: Clock) -> APIRouter:
    r = APIRouter(prefix="/api/v1/cases", tags=["cases"])

    @r.get("", response_model=list[CaseSummary])
    async def list_cases(
        principal: CurrentPrincipal,
        pool: Pool,
        org_path: str | None = None,
        state: CaseState | None = None,
        risk_level: Severity | None = None,
        overdue: bool | None = None,
        student_id: str | None = None,
        mine: bool = False,
        closure_pending: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> Any:
        """Cases in the caller's subtree (admins) or those the caller cares for (teachers, `mine=true`)."""
        limit, offset = page(limit, offset)
        if principal.has(*ADMINS) and not mine:
            path, carer = scope_path(principal, org_path), None
        elif principal.has(*CARER_ROLES) and principal.staff_id:
            path, carer = "/", principal.staff_id
        else:
            raise scope.forbidden("requires an administrator role or a carer's teacher token")
        rows = await cases.list_cases(
            pool,
            org_path=path,
            carer_staff_id=carer,
            state=state,
            risk_level=risk_level,
            overdue=overdue,
            student_id=student_id,
            limit=limit,
            offset=offset,
            closure_pending=closure_pending,
        )
        return [dict(x) for x in rows]

    @r.get("/{case_id}", response_model=CaseDetail)
    async def get_case(case_id: str, principal: CurrentPrincipal, pool: Pool) -> Any:
        """One case with its plan, carers, contacts, escalations and referrals; the read is audited."""
        async with pool.acquire() as conn, conn.transaction():
            c = await cases.get_case(conn, case_id)
            await require_case_access(conn, principal, c)
            await audit.record(
                conn,
                principal,
                resource_type="case",
                resource_id=case_id,
                org_path=c["org_path"],
                subject_ids=[c["student_id"]],
            )
            return {
                **dict(c),
                "carers": [dict(x) for x in await cases.carers_of(conn, case_id)],
                "findings": [dict(x) for x in await cases.findings_of(conn, case_id)],
                "contacts": [dict(x) for x in await cases.contacts_of(conn, case_id)],
                "escalations": [dict(x) for x in await cases.escalations_of(conn, case_id)],
                "referrals": [dict(x) for x in await referrals.of_case(conn, case_id)],
                "pending_closure": dict(p) if (p := await cases.pending_closure(conn, case_id)) else None,
                "closure_pending": p is not None,
            }

    @r.post("/{case_id}/contacts", status_code=201)
    async def log_contact(
        case_id: str, body: ContactIn, request: Request, principal: CurrentPrincipal, pool: Pool
    ) -> Any:
        """Log a contact (date, mode, who, outcome, next review); the first one meets the deadline."""
        now = clock.now()
        if body.contacted_at > now + CLOCK_SKEW:
            raise invalid("/contacted_at", "a contact cannot be in the future")

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            c = await cases.get_case(conn, case_id, lock=True)
            await require_case_access(conn, principal, c)
            if c["state"] == CaseState.CLOSED:
                raise conflict("the case is closed")
            contact_id = str(uuid.uuid4())
            first = c["first_contacted_at"] is None
            await cases.add_contact(
                conn,
                case_id,
                {
                    "contact_id": contact_id,
                    "contacted_at": body.contacted_at,
                    "mode": str(body.mode),
                    "staff_id": principal.staff_id,
                    "logged_by": principal.subject,
                    "outcome": body.outcome,
                    "next_review_at": body.next_review_at,
                },
            )
            await add_events(
                conn,
                [
                    CaseContactLogged(
                        **_facts(c, now),
                        contact_id=contact_id,
                        mode=str(body.mode),
                        contacted_at=body.contacted_at,
                        first_contact=first,
                    )
                ],
            )
            return {"contact_id": contact_id, "case_id": case_id, "first_contact": first}

        return await idempotency.write(request, principal, pool, work)

    @r.post("/{case_id}/state")
    async def change_state(
        case_id: str, body: StateIn, request: Request, principal: CurrentPrincipal, pool: Pool
    ) -> Any:
        """Move a case to in_progress or monitoring."""

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            c = await cases.get_case(conn, case_id, lock=True)
            await require_case_access(conn, principal, c)
            current, wanted = CaseState(c["state"]), CaseState(body.state)
            if wanted not in domain.CASE_TRANSITIONS[current]:
                raise conflict(f"a case cannot go from {current} to {wanted}")
            await cases.set_state(conn, case_id, wanted)
            return {"case_id": case_id, "state": wanted}

        return await idempotency.write(request, principal, pool, work, status_code=200)

    @r.post("/{case_id}/closure", status_code=201, response_model=ClosureProposed)
    async def propose_closure(
        case_id: str, body: CloseIn, request: Request, principal: CurrentPrincipal, pool: Pool
    ) -> Any:
        """Propose closing a case (its carers or administrators over it); a second person approves or rejects."""
        now = clock.now()

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            c = await cases.get_case(conn, case_id, lock=True)
            await require_case_access(conn, principal, c)
            pending = await cases.pending_closure(conn, case_id)
            refusal = domain.closure_proposal_refusal(CaseState(c["state"]), pending is not None)
            if refusal:
                raise conflict(refusal)
            role = _acting_role(principal)
            proposal = {
                "proposal_id": str(uuid.uuid4()),
                "reason_code": body.reason_code,
                "note": body.note,
                "proposed_by": principal.subject,
                "proposed_by_staff_id": principal.staff_id,
                "proposed_by_role": role,
                "proposed_at": now,
            }
            await cases.propose_closure(conn, case_id, proposal)
            await add_events(
                conn,
                [
                    CaseClosureProposed(
                        **_facts(c, now),
                        proposal_id=proposal["proposal_id"],
                        reason_code=body.reason_code,
                        proposed_by_role=role,
                    )
                ],
            )
            return {
                "case_id": case_id,
                "proposal_id": proposal["proposal_id"],
                "state": c["state"],
                "reason_code": body.reason_code,
                "proposed_by_role": role,
                "proposed_at": now,
            }

        return await idempotency.write(request, principal, pool, work)

    def decision(name: str, decided: domain.ClosureDecision) -> None:
        @r.post(f"/{{case_id}}/closure/{name}", response_model=ClosureDecided, name=f"{name}_closure")
        async def decide(
            case_id: str,
            request: Request,
            principal: CurrentPrincipal,
            pool: Pool,
            body: ClosureDecisionIn | None = None,
        ) -> Any:
            now = clock.now()
            rs = rules(request)

            async def work(conn: asyncpg.Connection) -> dict[str, Any]:
                c = await cases.get_case(conn, case_id, lock=True)
                await require_case_access(conn, principal, c)
                p = await cases.pending_closure(conn, case_id)
                if p is None:
                    raise conflict("no closure of this case is waiting for a decision")
                refusal = domain.closure_decision_refusal(
                    rs,
                    principal.roles,
                    principal.subject,
                    p["proposed_by"],
                    principal.staff_id,
                    p["proposed_by_staff_id"],
                )
                if refusal:
                    raise scope.forbidden(refusal)
                role = domain.closing_role(rs, principal.roles)
                await cases.decide_closure(
                    conn,
                    p["proposal_id"],
                    {
                        "decision": decided,
                        "decided_by": principal.subject,
                        "decided_by_role": role,
                        "decided_at": now,
                        "note": body.note if body else None,
                    },
                )
                state = CaseState(c["state"])
                if decided == domain.ClosureDecision.APPROVED:
                    if state not in domain.CLOSABLE_STATES:
                        raise conflict(f"a {state} case cannot be closed")
                    await cases.close_case(
                        conn,
                        case_id,
                        {
                            "closed_at": now,
                            "reason_code": p["reason_code"],
                            "note": p["note"],
                            "closed_by": principal.subject,
                            "closed_by_role": role,
                        },
                    )
                    state = CaseState.CLOSED
                    event: Any = CaseClosed(**_facts(c, now), reason_code=p["reason_code"], approved_by_role=role)
                else:
                    event = CaseClosureRejected(**_facts(c, now), proposal_id=p["proposal_id"], rejected_by_role=role)
                await add_events(conn, [event])
                return {
                    "case_id": case_id,
                    "proposal_id": p["proposal_id"],
                    "decision": decided,
                    "state": state,
                    "decided_by_role": role,
                    "proposed_by_role": p["proposed_by_role"],
                }

            return await idempotency.write(request, principal, pool, work, status_code=200)

        verb = "approves" if decided == domain.ClosureDecision.APPROVED else "rejects"
        decide.__doc__ = f"A second person (an administrator over the case, not the proposer) {verb} the closure."

    decision("approve", domain.ClosureDecision.APPROVED)
    decision("reject", domain.ClosureDecision.REJECTED)

    @r.post("/{case_id}/referrals", status_code=201, response_model=list[ReferralOut])
    async def refer(case_id: str, body: ReferralIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
        """Ask a department for help with a case by hand (mapped departments are asked automatically)."""
        now = clock.now()
        rs = rules(request)

        async def work(conn: asyncpg.Connection) -> list[dict[str, Any]]:
            c = await cases.get_case(conn, case_id, lock=True)
            await require_case_access(conn, principal, c)
            if c["state"] == CaseState.CLOSED:
                raise conflict("the case is closed")
            urgency = body.urgency or Severity(c["risk_level"])
            row = referral_row(
                rs, case_id, c["student_id"], c["org_path"], body.department, body.category, urgency, now
            )
            events = await request_referrals(conn, [row])
            if not events:
                raise conflict("this department already has an open referral for this case and category")
            await add_events(conn, events)
            ids = {getattr(e, "referral_id", None) for e in events}
            return [dict(x) for x in await referrals.of_case(conn, case_id) if x["referral_id"] in ids]

        return await idempotency.write(request, principal, pool, work)

    return r
