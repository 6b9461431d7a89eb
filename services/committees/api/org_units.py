"""Routes of the org tree: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import subtree_list, unknown
from services.committees.schemas import OrgUnitFilters, OrgUnitIn, OrgUnitOut, OrgUnitPatch
from services.committees.usecases import org_units
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["org units"])


subtree_list(router, "/org-units", OrgUnitOut, org_units.list_org_units, OrgUnitFilters)


@router.get("/org-units/{org_unit_id}", response_model=OrgUnitOut, response_model_exclude_unset=True)
async def get_org_unit(org_unit_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> dict[str, Any]:
    """One org unit."""
    return tag.of(await org_units.get(pool, org_unit_id))


@router.post(
    "/org-units", status_code=201, response_model=OrgUnitOut, responses=openapi.errors(409) | unknown("parent_id")
)
async def create_org_unit(body: OrgUnitIn, w: Writes) -> Any:
    """Add an org unit under a parent inside the caller's scope."""
    return await w.run(org_units.create, body)


@router.patch("/org-units/{org_unit_id}", response_model=OrgUnitOut)
async def update_org_unit(org_unit_id: str, body: OrgUnitPatch, w: Writes, if_match: versions.IfMatchRequired) -> Any:
    """Rename an org unit or change a school's type."""
    return await w.run(org_units.update, org_unit_id, body, if_match=if_match)
