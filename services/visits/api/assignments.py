"""Routes of assignments: list, add by hand, reassign, remove, schedule the visit."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request

from services.visits.schemas import (
    AssignmentIn,
    ReassignIn,
    ScheduleIn,
)
from services.visits.usecases import assignments as assignment_cases
from services.visits.usecases import queries, recording
from shared import idempotency
from shared.auth import ADMINS, CurrentPrincipal, Role
from shared.web import Pool

router = APIRouter(prefix="/api/v1")


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
        return await assignment_cases.add_assignment(conn, principal, campaign_id, body)

    return await idempotency.write(request, principal, pool, work, status_code=201)


@router.patch("/assignments/{assignment_id}", status_code=200, tags=["assignments"])
async def reassign(
    assignment_id: str, body: ReassignIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Give an open assignment to another teacher."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await assignment_cases.reassign(conn, principal, assignment_id, body.teacher_id)

    return await idempotency.write(request, principal, pool, work, status_code=200)


@router.delete("/assignments/{assignment_id}", status_code=200, tags=["assignments"])
async def remove_assignment(assignment_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Withdraw an open assignment."""

    async def work(conn: asyncpg.Connection) -> Any:
        return await assignment_cases.remove(conn, principal, assignment_id)

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
