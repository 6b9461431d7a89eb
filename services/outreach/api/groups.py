"""Special-group register routes: lists by org subtree, manual entry, verification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.outreach.api.common import Rules, paged_list
from services.outreach.schemas import GroupCounts, MemberQuery, MembershipIn, MembershipOut, VerifyIn
from services.outreach.usecases import groups
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1/groups", tags=["special groups"])


paged_list(router, "/members", MembershipOut, groups.list_members, MemberQuery)


@router.get("/counts", response_model=GroupCounts)
async def count_members(principal: CurrentPrincipal, pool: Pool, org_path: str | None = None) -> Any:
    """Current members per group under an org subtree."""
    return await groups.counts(pool, principal, org_path)


@router.post(
    "/members",
    status_code=201,
    response_model=MembershipOut,
    responses=openapi.errors({404: "no such student in the directory", 409: "the student is already in this group"}),
)
async def register_member(body: MembershipIn, w: Writes, rules: Rules) -> Any:
    """Enter a student in a group by hand: administrators over the child's class, or a department partner for
    the group of a referral it received; the class path comes from the directory, never from the client."""
    return await w.run(groups.register, rules, body)


@router.post("/members/{membership_id}/verify", response_model=MembershipOut)
async def verify_member(membership_id: str, body: VerifyIn, w: Writes, rules: Rules, if_match: versions.IfMatch) -> Any:
    """Verify (or reject) a membership: administrators over the child's class, or a department partner for the
    group of a referral it received."""
    return await w.run(groups.verify, rules, membership_id, body.verified, if_match=if_match)
