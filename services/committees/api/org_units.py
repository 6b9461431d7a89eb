"""Routes of the org tree: parse, authorize, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.api.common import Cursor, Limit
from services.committees.schemas import OrgUnitIn, OrgUnitPatch
from services.committees.usecases import org_units
from shared import idempotency
from shared.auth import CurrentPrincipal
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1", tags=["org units"])


@router.get("/org-units")
async def list_org_units(
    principal: CurrentPrincipal,
    pool: Pool,
    cursor: Cursor,
    under: str | None = None,
    level: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Org units in a subtree (default: the whole city), by id."""
    return await org_units.list_org_units(pool, under, level, cursor, limit)


@router.get("/org-units/{org_unit_id}")
async def get_org_unit(org_unit_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """One org unit."""
    return await org_units.get(pool, org_unit_id)


@router.post("/org-units", status_code=201)
async def create_org_unit(
    body: OrgUnitIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Add an org unit under a parent inside the caller's scope."""
    return await idempotency.write(
        request, principal, pool, lambda conn: org_units.create(conn, principal, clock, body)
    )


@router.patch("/org-units/{org_unit_id}")
async def update_org_unit(
    org_unit_id: str, body: OrgUnitPatch, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Rename an org unit or change a school's type."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: org_units.update(conn, principal, clock, org_unit_id, body),
        status_code=200,
    )
