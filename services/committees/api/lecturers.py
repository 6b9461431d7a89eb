"""Routes of the lecturer group and publicity lectures: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.api.common import Cursor, Limit
from services.committees.schemas import LectureIn, LecturerIn, LecturerOut, LecturerPage
from services.committees.usecases import lecturers
from shared import idempotency
from shared.auth import CurrentPrincipal
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1", tags=["lecturers"])


@router.post("/lecturers", status_code=201, response_model=LecturerOut)
async def add_lecturer(body: LecturerIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Add a member of the lecturer group (staff or, by name, an outside lecturer)."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: lecturers.add_lecturer(conn, principal, body),
        replayed=lambda conn, lecturer: lecturers.audit_lecturer(conn, principal, lecturer),
    )


@router.get("/lecturers", response_model=LecturerPage)
async def list_lecturers(
    principal: CurrentPrincipal, pool: Pool, cursor: Cursor, under: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """The lecturer group in a subtree (names of outside lecturers); the read is audited."""
    return await lecturers.list_lecturers(pool, principal, under, cursor, limit)


@router.post("/lectures", status_code=201)
async def record_lecture(
    body: LectureIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Record a publicity lecture given to audience org units (`lecture.given`)."""
    return await idempotency.write(
        request, principal, pool, lambda conn: lecturers.record_lecture(conn, principal, clock, body)
    )


@router.get("/lectures")
async def list_lectures(
    principal: CurrentPrincipal, pool: Pool, cursor: Cursor, under: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """Lectures given by lecturers in a subtree."""
    return await lecturers.list_lectures(pool, principal, under, cursor, limit)
