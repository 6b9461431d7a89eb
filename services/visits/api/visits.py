"""Routes of visit records: one visit, a batch collected offline, one visit's detail."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.visits.schemas import (
    BATCH_MAX_BYTES,
    BatchIn,
    VisitIn,
    VisitOut,
)
from services.visits.usecases import queries, recording
from shared import context, idempotency
from shared.auth import ADMINS, CurrentPrincipal, Role
from shared.edges import checks_text_per_item
from shared.web import Pool

router = APIRouter(prefix="/api/v1")


@router.post("/visits", status_code=201, tags=["visits"])
async def record_visit(body: VisitIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Record one visit (completed with checklist and findings, or missed); all-or-nothing.

    Without an Idempotency-Key the visit joins the service's group commit (answered after its commit); with one,
    it is written in its own transaction together with the key."""
    principal.require(Role.TEACHER, *ADMINS)
    if request.headers.get("idempotency-key") is None:
        writer: recording.VisitWriter = request.app.state.runtime.spec.writer
        outcome = await writer.submit(recording.Submission(principal, body, context.current()))
        return JSONResponse(_single_doc(outcome), status_code=201)

    async def work(conn: asyncpg.Connection) -> Any:
        [outcome] = await recording.record_visits(conn, [recording.Submission(principal, body)])
        return _single_doc(outcome)

    return await idempotency.write(request, principal, pool, work, status_code=201)


def _single_doc(outcome: recording.Outcome) -> dict[str, Any]:
    """The answer for one visit, or the problem when it was rejected."""
    if outcome.faults:
        raise recording.single_problem(outcome.faults)
    doc = outcome.doc()
    del doc["index"], doc["result"]
    return doc


@router.post("/visits/batch", status_code=200, tags=["visits"], max_body_size=BATCH_MAX_BYTES)
@checks_text_per_item
async def record_batch(body: BatchIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Record up to 1000 visits collected offline: good items are stored, bad ones reported by index and field."""
    principal.require(Role.TEACHER, *ADMINS)
    items = [recording.Submission(principal, recording.parse_item(raw)) for raw in body.visits]

    async def work(conn: asyncpg.Connection) -> Any:
        outcomes = await recording.record_visits(conn, items)
        stored = sum(1 for o in outcomes if not o.faults)
        return {"stored": stored, "rejected": len(outcomes) - stored, "results": [o.doc() for o in outcomes]}

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.get("/visits/{visit_id}", tags=["visits"], response_model=VisitOut)
async def get_visit(visit_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A visit with its checklist (labelled) and findings."""
    return await queries.visit(pool, principal, visit_id)
