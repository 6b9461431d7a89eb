"""Routes of families and guardians: parse, authorize, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.schemas import FamilyIn, FamilyOut, FamilyPatch, GuardianIn
from services.committees.usecases import families
from shared import idempotency
from shared.auth import CurrentPrincipal
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1", tags=["families"])


def _replayed(principal: CurrentPrincipal) -> idempotency.Replayed:
    """A replayed answer carries the same personal data as the first one: audited the same way."""
    return lambda conn, fam: families.audit_family(conn, principal, fam, "write")


@router.post("/families", status_code=201, response_model=FamilyOut)
async def create_family(
    body: FamilyIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Register a family with its guardians (students join it when registered)."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: families.create(conn, principal, clock, body),
        replayed=_replayed(principal),
    )


@router.get("/families/{family_id}", response_model=FamilyOut)
async def get_family(family_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A family with its guardians and students, for callers with personal access to one of its students."""
    return await families.get(pool, principal, family_id)


@router.patch("/families/{family_id}", response_model=FamilyOut)
async def update_family(
    family_id: str, body: FamilyPatch, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Change whether parents work away, the living arrangement or the address."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: families.update(conn, principal, clock, family_id, body),
        status_code=200,
        replayed=_replayed(principal),
    )


@router.post("/families/{family_id}/guardians", status_code=201, response_model=FamilyOut)
async def add_guardian(
    family_id: str, body: GuardianIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Add a guardian to a family (the family's facts change: `family.changed`)."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: families.add_guardian(conn, principal, clock, family_id, body),
        replayed=_replayed(principal),
    )
