"""The calling teacher's own work: `GET /api/v1/me/assignments`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.visits.schemas import MyAssignmentsOut
from services.visits.usecases import queries
from shared.auth import CurrentPrincipal
from shared.web import Pool, Today

router = APIRouter(prefix="/api/v1/me", tags=["assignments"])


@router.get("/assignments", response_model=MyAssignmentsOut)
async def list_my_assignments(principal: CurrentPrincipal, pool: Pool, today: Today) -> Any:
    """A teacher's own progress in each launched campaign (done out of target, what is left, expected by today,
    behind schedule or not) and the families still to visit."""
    return await queries.my_assignments(pool, principal, today)
