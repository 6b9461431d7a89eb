"""HTTP routes of the visits service (thin: access, parsing, then a use case or a query)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.visits import checklist, queries, recording, service
from services.visits.schemas import (
    BATCH_MAX_BYTES,
    AssignmentIn,
    BatchIn,
    CampaignIn,
    ReassignIn,
    ScheduleIn,
    VisitIn,
    VisitOut,
)
from services.visits.settings import VisitsSettings
from shared import context, idempotency
from shared.auth import ADMINS, CurrentPrincipal, Role
from shared.edges import checks_text_per_item
from shared.problems import not_found
from shared.web import Pool

router = APIRouter(prefix="/api/v1")


def _settings(request: Request) -> VisitsSettings:
    settings: VisitsSettings = request.app.state.settings
    return settings


# ------------------------------------------------------------------------------------------- checklists


@router.get("/guidance-topics", tags=["checklists"])
async def list_guidance_topics(principal: CurrentPrincipal) -> list[dict[str, str]]:
    """The guidance topics a visit may record, by code, with Chinese and English labels."""
    return [{"code": t.id, "zh": t.zh, "en": t.en} for t in checklist.guidance_topics().values()]


@router.get("/checklists/{version}", tags=["checklists"])
async def get_checklist(version: str, principal: CurrentPrincipal) -> dict[str, Any]:
    """The Ten Requirements of a version (`current` for the one in force), with Chinese and English labels."""
    config = checklist.load()
    version = config.current if version == "current" else version
    if version not in config.versions:
        raise not_found("checklist version")
    return {"version": version, "items": [i.__dict__ for i in config.items(version)]}


# -------------------------------------------------------------------------------------------- campaigns


@router.post("/campaigns", status_code=201, tags=["campaigns"])
async def create_campaign(body: CampaignIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Create a draft campaign for an org subtree (admins of that subtree)."""
    target = _settings(request).default_target_per_teacher

    async def work(conn: asyncpg.Connection) -> Any:
        return await service.create_campaign(conn, principal, body, target)

    return await idempotency.write(request, principal, pool, work, status_code=201)


@router.get("/campaigns", tags=["campaigns"])
async def list_campaigns(principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """Campaigns covering or inside the caller's subtree."""
    return await queries.list_campaigns(pool, principal)


@router.get("/campaigns/{campaign_id}", tags=["campaigns"])
async def get_campaign(campaign_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """One campaign with its checklist."""
    return await queries.campaign(pool, principal, campaign_id)


@router.post("/campaigns/{campaign_id}/launch", status_code=200, tags=["campaigns"])
async def launch_campaign(campaign_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """draft → launched: generates the assignments (class teachers first) and publishes them."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await service.launch_campaign(conn, principal, campaign_id)

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.post("/campaigns/{campaign_id}/close", status_code=200, tags=["campaigns"])
async def close_campaign(campaign_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """launched → closed."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await service.close_campaign(conn, principal, campaign_id)

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.get("/campaigns/{campaign_id}/progress", tags=["campaigns"])
async def campaign_progress(
    campaign_id: str,
    principal: CurrentPrincipal,
    pool: Pool,
    by: Literal["school", "district"] = "school",
    org_path: str | None = None,
) -> dict[str, Any]:
    """Assigned, completed, missed and outstanding visits (and completed by mode) per school or district."""
    return await queries.progress(pool, principal, campaign_id, by, org_path)


# ------------------------------------------------------------------------------------------ assignments


@router.get("/campaigns/{campaign_id}/assignments", tags=["assignments"])
async def list_assignments(
    campaign_id: str,
    principal: CurrentPrincipal,
    pool: Pool,
    teacher_id: str | None = None,
    status: Literal["assigned", "completed", "missed", "removed"] | None = None,
    org_path: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Families and their visit status: a teacher sees their own, admins their subtree (filter by teacher)."""
    return await queries.assignments(pool, principal, campaign_id, teacher_id, status, org_path, limit, offset)


@router.post("/campaigns/{campaign_id}/assignments", status_code=201, tags=["assignments"])
async def add_assignment(
    campaign_id: str, body: AssignmentIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Assign a family by hand (one not assigned in this campaign)."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await service.add_assignment(conn, principal, campaign_id, body)

    return await idempotency.write(request, principal, pool, work, status_code=201)


@router.patch("/assignments/{assignment_id}", status_code=200, tags=["assignments"])
async def reassign(
    assignment_id: str, body: ReassignIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Give an open assignment to another teacher."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await service.reassign(conn, principal, assignment_id, body.teacher_id)

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.delete("/assignments/{assignment_id}", status_code=200, tags=["assignments"])
async def remove_assignment(assignment_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Withdraw an open assignment."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await service.remove(conn, principal, assignment_id)

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.post("/assignments/{assignment_id}/schedule", status_code=200, tags=["assignments"])
async def schedule_visit(
    assignment_id: str, body: ScheduleIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Plan (or move) the visit: a scheduled visit that recording later completes, misses or removal cancels."""
    principal.require(Role.TEACHER, *ADMINS)

    async def work(conn: asyncpg.Connection) -> Any:
        return await recording.schedule(conn, principal, assignment_id, body)

    return await idempotency.write(request, principal, pool, work, status_code=200)


# ----------------------------------------------------------------------------------------------- visits


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
