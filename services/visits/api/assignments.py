"""Routes of assignments: list, add by hand, reassign, remove, schedule the visit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.visits.schemas import (
    AssignmentIn,
    AssignmentMadeOut,
    AssignmentOut,
    AssignmentStatus,
    ReassignedOut,
    ReassignIn,
    RemovedOut,
    ScheduledOut,
    ScheduleIn,
)
from services.visits.usecases import assignments as assignment_cases
from services.visits.usecases import queries, recording
from shared import openapi, pages, versions
from shared.auth import ADMINS, CurrentPrincipal, Role
from shared.pages import Page
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["assignments"])


@router.get("/campaigns/{campaign_id}/assignments", response_model=Page[AssignmentOut])
async def list_assignments(
    campaign_id: str,
    principal: CurrentPrincipal,
    pool: Pool,
    teacher_id: str | None = None,
    status: AssignmentStatus | None = None,
    org_path: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="items per page (1 to 1000)")] = 200,
    cursor: pages.Cursor = None,
    changed_since: Annotated[
        datetime | None,
        Query(
            description="only assignments changed after this time (their `updated_at`), removed ones included: an"
            " app's incremental download sends the latest `updated_at` it has seen (less a margin for changes still"
            " being committed)"
        ),
    ] = None,
) -> Any:
    """Families and their visit status: a teacher sees their own, admins their subtree (filter by teacher)."""
    return await queries.assignments(
        pool, principal, campaign_id, teacher_id, status, org_path, limit, cursor, changed_since
    )


@router.post(
    "/campaigns/{campaign_id}/assignments",
    status_code=201,
    response_model=AssignmentMadeOut,
    responses=openapi.errors({409: "the campaign is not launched, or the family already has an assignment"}),
)
async def add_assignment(campaign_id: str, body: AssignmentIn, w: Writes) -> Any:
    """Assign a family by hand (one not assigned in this campaign)."""
    return await w.run(assignment_cases.add_assignment, campaign_id, body)


NOT_OPEN = openapi.errors({409: "the campaign is not launched, or the assignment is completed or removed"})


@router.patch("/assignments/{assignment_id}", response_model=ReassignedOut, responses=NOT_OPEN)
async def reassign(assignment_id: str, body: ReassignIn, w: Writes, if_match: versions.IfMatchRequired) -> Any:
    """Give an open assignment to another teacher."""
    return await w.run(assignment_cases.reassign, assignment_id, body.teacher_id, if_match=if_match)


@router.delete("/assignments/{assignment_id}", response_model=RemovedOut, responses=NOT_OPEN)
async def remove_assignment(assignment_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """Withdraw an open assignment."""
    return await w.run(assignment_cases.remove, assignment_id, if_match=if_match)


@router.post(
    "/assignments/{assignment_id}/schedule",
    response_model=ScheduledOut,
    responses=openapi.errors({409: "the assignment is not open for visits"}),
)
async def schedule_visit(assignment_id: str, body: ScheduleIn, w: Writes) -> Any:
    """Plan (or move) the visit: a scheduled visit that recording later completes, misses or removal cancels."""
    w.principal.require(Role.TEACHER, *ADMINS)
    return await w.run(recording.schedule, assignment_id, body)
