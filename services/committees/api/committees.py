"""Routes of parent committees: parse, authorize the role, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.api.common import Cursor, Limit
from services.committees.schemas import CommitteeIn, CommitteeOut, DissolveIn, MemberIn
from services.committees.usecases import committees
from shared import idempotency
from shared.auth import CurrentPrincipal
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1", tags=["committees"])


@router.post("/committees", status_code=201)
async def form_committee(
    body: CommitteeIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Form the parent committee of a county, school, grade or class (one active committee per unit)."""
    return await idempotency.write(request, principal, pool, lambda conn: committees.form(conn, principal, clock, body))


@router.get("/committees")
async def list_committees(
    principal: CurrentPrincipal, pool: Pool, cursor: Cursor, under: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """Committees in a subtree (active and dissolved)."""
    return await committees.list_committees(pool, principal, under, cursor, limit)


@router.get("/committees/{committee_id}", response_model=CommitteeOut, response_model_exclude_unset=True)
async def get_committee(committee_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A committee and its active members (members' names only for admins in scope); the read is audited."""
    return await committees.get(pool, principal, committee_id)


@router.post("/committees/{committee_id}/dissolve")
async def dissolve_committee(
    committee_id: str, body: DissolveIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Dissolve a committee; its active members leave."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: committees.dissolve(conn, principal, clock, committee_id, body),
        status_code=200,
    )


@router.post("/committees/{committee_id}/members", status_code=201)
async def add_member(
    committee_id: str, body: MemberIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """A guardian of a student inside the committee's unit joins it."""
    return await idempotency.write(
        request, principal, pool, lambda conn: committees.add_member(conn, principal, clock, committee_id, body)
    )


@router.delete("/committees/{committee_id}/members/{guardian_id}")
async def remove_member(
    committee_id: str, guardian_id: str, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """A member leaves the committee."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: committees.remove_member(conn, principal, clock, committee_id, guardian_id),
        status_code=200,
    )
