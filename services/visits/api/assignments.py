"""Routes of assignments: list, add by hand, reassign, remove, schedule the visit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request

from services.visits.schemas import (
    AssignmentIn,
    AssignmentMadeOut,
    AssignmentOut,
    ReassignedOut,
    ReassignIn,
    RemovedOut,
    ScheduledOut,
    ScheduleIn,
)
from services.visits.usecases import assignments as assignment_cases
from services.visits.usecases import queries, recording
from shared import idempotency, openapi, pages, versions
from shared.auth import ADMINS, CurrentPrincipal, Role
from shared.pages import Page
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1")


@router.get("/campaigns/{campaign_id}/assignments", tags=["assignments"], response_model=Page[AssignmentOut])
async def list_assignments(
    campaign_id: str,
    principal: CurrentPrincipal,
    pool: Pool,
    teacher_id: str | None = None,
    status: Literal["assigned", "completed", "missed", "removed"] | None = None,
    org_path: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="items per page (1 to 1000)")] = 200,
    cursor: pages.Cursor = None,
) -> Any:
    """Families and their visit status: a teacher sees their own, admins their subtree (filter by teacher)."""
    return await queries.assignments(pool, principal, campaign_id, teacher_id, status, org_path, limit, cursor)


@router.post(
    "/campaigns/{campaign_id}/assignments",
    status_code=201,
    tags=["assignments"],
    response_model=AssignmentMadeOut,
    dependencies=[idempotency.KEY],
    responses=openapi.errors({409: "the campaign is not launched, or the family already has an assignment"}),
)
async def add_assignment(
    campaign_id: str, body: AssignmentIn, request: Request, principal: CurrentPrincipal, pool: Pool, clock: CurrentClock
) -> Any:
    """Assign a family by hand (one not assigned in this campaign)."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await assignment_cases.add_assignment(conn, principal, campaign_id, body, clock)

    return await idempotency.write(request, principal, pool, work, status_code=201)


@router.patch(
    "/assignments/{assignment_id}",
    status_code=200,
    tags=["assignments"],
    response_model=ReassignedOut,
    dependencies=[idempotency.KEY],
    responses=openapi.errors({409: "the campaign is not launched, or the assignment is completed or removed"}),
)
async def reassign(
    assignment_id: str,
    body: ReassignIn,
    request: Request,
    principal: CurrentPrincipal,
    pool: Pool,
    clock: CurrentClock,
    if_match: versions.IfMatchRequired,
) -> Any:
    """Give an open assignment to another teacher."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await assignment_cases.reassign(conn, principal, assignment_id, body.teacher_id, clock, if_match)

    return versions.tagged(await idempotency.write(request, principal, pool, work, status_code=200))


@router.delete(
    "/assignments/{assignment_id}",
    status_code=200,
    tags=["assignments"],
    response_model=RemovedOut,
    dependencies=[idempotency.KEY],
    responses=openapi.errors({409: "the campaign is not launched, or the assignment is completed or removed"}),
)
async def remove_assignment(
    assignment_id: str,
    request: Request,
    principal: CurrentPrincipal,
    pool: Pool,
    clock: CurrentClock,
    if_match: versions.IfMatch,
) -> Any:
    """Withdraw an open assignment."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await assignment_cases.remove(conn, principal, assignment_id, clock, if_match)

    return versions.tagged(await idempotency.write(request, principal, pool, work, status_code=200))


@router.post(
    "/assignments/{assignment_id}/schedule",
    status_code=200,
    tags=["assignments"],
    response_model=ScheduledOut,
    dependencies=[idempotency.KEY],
    responses=openapi.errors({409: "the assignment is not open for visits"}),
)
async def schedule_visit(
    assignment_id: str, body: ScheduleIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Plan (or move) the visit: a scheduled visit that recording later completes, misses or removal cancels."""
    principal.require(Role.TEACHER, *ADMINS)

    async def work(conn: asyncpg.Connection) -> Any:
        return await recording.schedule(conn, principal, assignment_id, body)

    return await idempotency.write(request, principal, pool, work, status_code=200)
