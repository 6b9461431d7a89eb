"""Routes of staff: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import subtree_list, unknown
from services.committees.schemas import StaffFilters, StaffIn, StaffLeftOut, StaffOut, StaffPatch
from services.committees.usecases import staff
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["staff"])


subtree_list(router, "/staff", StaffOut, staff.list_staff, StaffFilters)


@router.get("/staff/{staff_id}", response_model=StaffOut, response_model_exclude_unset=True)
async def get_staff(staff_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> dict[str, Any]:
    """One staff member."""
    return tag.of(await staff.get(pool, principal, staff_id))


@router.post("/staff", status_code=201, response_model=StaffOut, responses=openapi.errors(409) | unknown("org_unit_id"))
async def create_staff(body: StaffIn, w: Writes) -> Any:
    """Register a staff member at a school (or district office)."""
    return await w.run(staff.create, body, replayed=staff.audit_answer)


@router.patch("/staff/{staff_id}", response_model=StaffOut)
async def update_staff(staff_id: str, body: StaffPatch, w: Writes, if_match: versions.IfMatchRequired) -> Any:
    """Change a staff member's roles, classes or contact."""
    return await w.run(staff.update, staff_id, body, if_match=if_match, replayed=staff.audit_answer)


@router.delete("/staff/{staff_id}", response_model=StaffLeftOut)
async def mark_staff_left(staff_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """A staff member left: deactivate and publish `staff.left`."""
    return await w.run(staff.leave, staff_id, if_match=if_match)
