"""Care-case routes: lists, audited detail, contacts, state changes, closure with approval, manual referrals."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.outreach.api.common import Rules, note_step, paged_list
from services.outreach.domain import CaseState, ClosureDecision
from services.outreach.schemas import (
    CaseDetail,
    CaseQuery,
    CaseSummary,
    CloseIn,
    ClosureDecided,
    ClosureDecisionIn,
    ClosureProposed,
    ContactIn,
    ContactLogged,
    ReferralIn,
    ReferralsRequested,
    StateChanged,
    StateIn,
)
from services.outreach.usecases import cases
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])
CLOSED = openapi.errors({409: "the case is closed (or the change is not allowed in its state)"})


paged_list(router, "", CaseSummary, cases.list_cases, CaseQuery)


@router.get("/{case_id}", response_model=CaseDetail)
async def get_case(case_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> Any:
    """One case with its plan, carers, contacts, escalations and referrals; the read is audited."""
    return tag.of(await cases.get_case_detail(pool, principal, case_id))


@router.post("/{case_id}/contacts", status_code=201, response_model=ContactLogged, responses=CLOSED)
async def log_contact(case_id: str, body: ContactIn, w: Writes, rules: Rules) -> Any:
    """Log a contact (date, mode, who, outcome, next review); the first one meets the deadline, each one sets the
    next review (at the latest the risk level's interval later), which is escalated when it passes."""
    return await w.run(cases.log_contact, rules, case_id, body)


@router.post("/{case_id}/state", response_model=StateChanged, responses=CLOSED)
async def change_state(case_id: str, body: StateIn, w: Writes, if_match: versions.IfMatch) -> Any:
    """Move a case to in_progress or monitoring."""
    return await w.run(cases.change_state, case_id, CaseState(body.state), if_match=if_match)


@router.post(
    "/{case_id}/closure",
    status_code=201,
    response_model=ClosureProposed,
    responses=openapi.errors({409: "the case cannot close, or a closure already waits for approval"}),
)
async def propose_closure(case_id: str, body: CloseIn, w: Writes, if_match: versions.IfMatch) -> Any:
    """Propose closing a case (its carers or administrators over it); a second person approves or rejects."""
    return await w.run(cases.propose_closure, case_id, body, if_match=if_match)


for _name, _decided in (("approve", ClosureDecision.APPROVED), ("reject", ClosureDecision.REJECTED)):
    note_step(
        router,
        f"/{{case_id}}/closure/{_name}",
        "case_id",
        cases.decide_closure,
        _decided,
        ClosureDecisionIn,
        ClosureDecided,
        "no closure waits for a decision, or the case cannot close",
        name=f"{_name}_closure",
        doc=f"A second person (an administrator over the case, not the proposer) {_name}s the closure.",
    )


@router.post(
    "/{case_id}/referrals",
    status_code=201,
    response_model=ReferralsRequested,
    responses=openapi.errors({409: "the case is closed, or the department already has an open referral for it"}),
)
async def refer_case(case_id: str, body: ReferralIn, w: Writes, rules: Rules) -> Any:
    """Ask a department for help with a case by hand (mapped departments are asked automatically)."""
    return await w.run(cases.refer, rules, case_id, body)
