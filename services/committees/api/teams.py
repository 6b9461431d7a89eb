"""Routes of instructor teams: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.api.common import Cursor, Limit
from services.committees.schemas import TeamFormed, TeamIn, TeamMemberAdded, TeamMemberIn, TeamOut
from services.committees.usecases import teams
from shared import idempotency
from shared.auth import CurrentPrincipal
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1", tags=["instructor teams"])


@router.post("/instructor-teams", status_code=201, response_model=TeamFormed)
async def form_team(
    body: TeamIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Form an instructor team for a school or county."""
    return await idempotency.write(request, principal, pool, lambda conn: teams.form(conn, principal, clock, body))


@router.get("/instructor-teams")
async def list_teams(
    principal: CurrentPrincipal, pool: Pool, cursor: Cursor, under: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """Instructor teams in a subtree."""
    return await teams.list_teams(pool, principal, under, cursor, limit)


@router.get("/instructor-teams/{team_id}", response_model=TeamOut)
async def get_team(team_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A team with its active members (names of members who are not staff); the read is audited."""
    return await teams.get(pool, principal, team_id)


@router.post("/instructor-teams/{team_id}/members", status_code=201, response_model=TeamMemberAdded)
async def add_team_member(
    team_id: str, body: TeamMemberIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Add a member: school staff by staff_id (inside the team's unit), experts and parents by name."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: teams.add_member(conn, principal, clock, team_id, body),
        replayed=lambda conn, member: teams.audit_member(conn, principal, member),
    )


@router.delete("/instructor-teams/{team_id}/members/{member_id}")
async def remove_team_member(
    team_id: str, member_id: str, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Remove a member from a team."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: teams.remove_member(conn, principal, clock, team_id, member_id),
        status_code=200,
    )
