"""Routes of visit records: one visit, a batch collected offline, one visit's detail."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.visits.domain.recording import Fault
from services.visits.schemas import (
    BATCH_MAX_BYTES,
    BatchIn,
    BatchOut,
    VisitIn,
    VisitOut,
    VisitRecorded,
)
from services.visits.usecases import queries, recording
from services.visits.usecases.group_commit import VisitWriter
from shared import context, idempotency, openapi
from shared.auth import ADMINS, CurrentPrincipal, Principal, Role
from shared.edges import checks_own_text, may_hold_bad_text
from shared.web import Pool

router = APIRouter(prefix="/api/v1", tags=["visits"])


@router.post(
    "/visits",
    status_code=201,
    response_model=VisitRecorded,
    dependencies=[idempotency.KEY],
    # The group commit needs no pool of the route's own, so the kit cannot see the 503: it is declared here.
    responses=openapi.errors(503, {404: "no such assignment", 409: "the assignment is not open for this visit"}),
)
async def record_visit(body: VisitIn, request: Request, principal: CurrentPrincipal) -> Any:
    """Record one visit (completed with checklist and findings, or missed); all-or-nothing. Answered after the
    commit of the service's group commit; with an Idempotency-Key a repeat gets the first answer again."""
    principal.require(Role.TEACHER, *ADMINS)
    return await _record(request, principal, [body], "single")


@router.post(
    "/visits/batch",
    max_body_size=BATCH_MAX_BYTES,
    response_model=BatchOut,
    dependencies=[idempotency.KEY],
    responses=openapi.errors(503),
)
@checks_own_text
async def record_batch(body: BatchIn, request: Request, principal: CurrentPrincipal) -> Any:
    """Record up to 1000 visits collected offline: good items are stored, bad ones reported by index and field."""
    principal.require(Role.TEACHER, *ADMINS)
    checked = not may_hold_bad_text(await request.body())  # most bodies: no string needs looking at
    return await _record(request, principal, [recording.parse_item(raw, checked) for raw in body.visits], "batch")


async def _record(
    request: Request,
    principal: Principal,
    visits: list[VisitIn | list[Fault]],
    kind: Literal["single", "batch"],
) -> JSONResponse:
    """Hand the visits to the group commit (the one write path) and answer with its result."""
    claim = await idempotency.claim_of(request, principal)
    writer: VisitWriter = request.app.state.runtime.spec.writer
    result = await writer.submit(recording.Submission(principal, visits, kind, context.current(), claim))
    if isinstance(result, recording.Earlier):
        assert claim is not None
        return idempotency.replay(claim, result.answer)
    if result.status is None:
        [outcome] = result.outcomes
        raise recording.single_problem(outcome.faults or [])
    return JSONResponse(result.body, status_code=result.status)


@router.get("/visits/{visit_id}", response_model=VisitOut)
async def get_visit(visit_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A visit with its checklist (labelled) and findings."""
    return await queries.visit(pool, principal, visit_id)
