"""Routes of staff: parse, authorize, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.api.common import Cursor, Limit
from services.committees.schemas import StaffIn, StaffOut, StaffPage, StaffPatch
from services.committees.usecases import staff
from services.committees.usecases.directory import audit_person
from shared import idempotency
from shared.auth import CurrentPrincipal
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1", tags=["staff"])


@router.get("/staff", response_model=StaffPage, response_model_exclude_unset=True)
async def list_staff(
    principal: CurrentPrincipal,
    pool: Pool,
    cursor: Cursor,
    under: str | None = None,
    role: str | None = None,
    class_id: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Active staff in a subtree, filtered by role or class."""
    return await staff.list_staff(pool, principal, under, role, class_id, cursor, limit)


@router.get("/staff/{staff_id}", response_model=StaffOut, response_model_exclude_unset=True)
async def get_staff(staff_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """One staff member."""
    return await staff.get(pool, principal, staff_id)


@router.post("/staff", status_code=201, response_model=StaffOut)
async def create_staff(
    body: StaffIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Register a staff member at a school (or district office)."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: staff.create(conn, principal, clock, body),
        replayed=lambda conn, row: audit_person(conn, principal, "staff", row, "write"),
    )


@router.patch("/staff/{staff_id}", response_model=StaffOut)
async def update_staff(
    staff_id: str, body: StaffPatch, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Change a staff member's roles, classes or contact."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: staff.update(conn, principal, clock, staff_id, body),
        status_code=200,
        replayed=lambda conn, row: audit_person(conn, principal, "staff", row, "write"),
    )


@router.delete("/staff/{staff_id}")
async def staff_left(
    staff_id: str, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """A staff member left: deactivate and publish `staff.left`."""
    return await idempotency.write(
        request, principal, pool, lambda conn: staff.leave(conn, principal, clock, staff_id), status_code=200
    )
