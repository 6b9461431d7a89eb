"""Routes of instructor teams: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import subtree_list, unknown
from services.committees.schemas import TeamIn, TeamMemberAdded, TeamMemberIn, TeamMemberRemoved, TeamOut, TeamSummary
from services.committees.usecases import teams
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["instructor teams"])
ONE = "/instructor-teams/{team_id}"


@router.post("/instructor-teams", status_code=201, response_model=TeamSummary, responses=unknown("org_unit_id"))
async def form_team(body: TeamIn, w: Writes) -> Any:
    """Form an instructor team for a school or county."""
    return await w.run(teams.form, body)


subtree_list(router, "/instructor-teams", TeamSummary, teams.list_teams)


@router.get(ONE, response_model=TeamOut, response_model_exclude_unset=True)
async def get_team(team_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> dict[str, Any]:
    """A team with its active members (names of members who are not staff); the read is audited."""
    return tag.of(await teams.get(pool, principal, team_id))


@router.post(ONE + "/members", status_code=201, response_model=TeamMemberAdded, responses=openapi.errors(409))
async def add_team_member(team_id: str, body: TeamMemberIn, w: Writes) -> Any:
    """Add a member: school staff by staff_id (inside the team's unit), experts and parents by name."""
    return await w.run(teams.add_member, team_id, body, replayed=teams.audit_member)


@router.delete(ONE + "/members/{member_id}", response_model=TeamMemberRemoved)
async def remove_team_member(team_id: str, member_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """Remove a member from a team (`If-Match`: the member's version, as the team's GET lists it)."""
    return await w.run(teams.remove_member, team_id, member_id, if_match=if_match)
