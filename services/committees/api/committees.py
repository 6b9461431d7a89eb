"""Routes of parent committees: parse, call one use case (which authorizes against the record it loads)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import subtree_list, unknown
from services.committees.schemas import (
    CommitteeDissolvedOut,
    CommitteeFormedOut,
    CommitteeIn,
    CommitteeOut,
    CommitteeSummary,
    DissolveIn,
    MemberIn,
    MembershipEnded,
    MembershipOut,
)
from services.committees.usecases import committees
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["committees"])
ONE = "/committees/{committee_id}"


@router.post(
    "/committees",
    status_code=201,
    response_model=CommitteeFormedOut,
    responses=openapi.errors(409) | unknown("org_unit_id"),
)
async def form_committee(body: CommitteeIn, w: Writes) -> Any:
    """Form the parent committee of a county, school, grade or class (one active committee per unit)."""
    return await w.run(committees.form, body)


subtree_list(router, "/committees", CommitteeSummary, committees.list_committees)


@router.get(ONE, response_model=CommitteeOut, response_model_exclude_unset=True)
async def get_committee(
    committee_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag
) -> dict[str, Any]:
    """A committee and its active members (members' names only for admins in scope); the read is audited."""
    return tag.of(await committees.get(pool, principal, committee_id))


@router.post(ONE + "/dissolve", response_model=CommitteeDissolvedOut, responses=openapi.errors(409))
async def dissolve_committee(committee_id: str, body: DissolveIn, w: Writes, if_match: versions.IfMatch) -> Any:
    """Dissolve a committee; its active members leave."""
    return await w.run(committees.dissolve, committee_id, body, if_match=if_match)


@router.post(ONE + "/members", status_code=201, response_model=MembershipOut, responses=openapi.errors(409))
async def add_committee_member(committee_id: str, body: MemberIn, w: Writes) -> Any:
    """A guardian of a student inside the committee's unit joins it."""
    return await w.run(committees.add_member, committee_id, body)


@router.delete(ONE + "/members/{guardian_id}", response_model=MembershipEnded)
async def remove_committee_member(committee_id: str, guardian_id: str, w: Writes) -> Any:
    """A member leaves the committee."""
    return await w.run(committees.remove_member, committee_id, guardian_id)
