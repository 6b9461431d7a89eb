"""Routes of families and guardians: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.schemas import FamilyIn, FamilyOut, FamilyPatch, GuardianIn
from services.committees.usecases import families
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["families"])


@router.post("/families", status_code=201, response_model=FamilyOut, responses=openapi.errors(409))
async def create_family(body: FamilyIn, w: Writes) -> Any:
    """Register a family with its guardians (students join it when registered)."""
    return await w.run(families.create, body, replayed=families.audit_answer)


@router.get("/families/{family_id}", response_model=FamilyOut)
async def get_family(family_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> dict[str, Any]:
    """A family with its guardians and students, for callers with personal access to one of its students."""
    return tag.of(await families.get(pool, principal, family_id))


@router.patch("/families/{family_id}", response_model=FamilyOut)
async def update_family(family_id: str, body: FamilyPatch, w: Writes, if_match: versions.IfMatchRequired) -> Any:
    """Change whether parents work away, the living arrangement or the address."""
    return await w.run(families.update, family_id, body, if_match=if_match, replayed=families.audit_answer)


@router.post(
    "/families/{family_id}/guardians", status_code=201, response_model=FamilyOut, responses=openapi.errors(409)
)
async def add_guardian(family_id: str, body: GuardianIn, w: Writes) -> Any:
    """Add a guardian to a family (the family's facts change: `family.changed`)."""
    return await w.run(families.add_guardian, family_id, body, replayed=families.audit_answer)
