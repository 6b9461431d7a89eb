"""Routes of parent schools, their sessions, enrolment and attendance: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.api.common import Cursor, Limit
from services.committees.schemas import AttendanceIn, EnrolIn, ParentSchoolIn, SessionIn
from services.committees.usecases import parent_schools
from shared import idempotency
from shared.auth import CurrentPrincipal
from shared.web import CurrentClock, Pool

router = APIRouter(prefix="/api/v1", tags=["parent schools"])
SESSION = "/parent-schools/{parent_school_id}/sessions/{session_id}"


@router.post("/parent-schools", status_code=201)
async def establish_parent_school(
    body: ParentSchoolIn, request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool
) -> Any:
    """Establish a county-level, school-level or online parent school."""
    return await idempotency.write(
        request, principal, pool, lambda conn: parent_schools.establish(conn, principal, clock, body)
    )


@router.get("/parent-schools")
async def list_parent_schools(
    principal: CurrentPrincipal, pool: Pool, cursor: Cursor, under: str | None = None, limit: Limit = 100
) -> dict[str, Any]:
    """Parent schools in a subtree."""
    return await parent_schools.list_parent_schools(pool, principal, under, cursor, limit)


@router.get("/parent-schools/{parent_school_id}")
async def get_parent_school(parent_school_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A parent school and its sessions."""
    return await parent_schools.get(pool, principal, parent_school_id)


@router.post("/parent-schools/{parent_school_id}/sessions", status_code=201)
async def schedule_session(
    parent_school_id: str,
    body: SessionIn,
    request: Request,
    principal: CurrentPrincipal,
    clock: CurrentClock,
    pool: Pool,
) -> Any:
    """Schedule a session (topic, date, mode, speaker)."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: parent_schools.schedule_session(conn, principal, clock, parent_school_id, body),
    )


@router.get(SESSION)
async def get_session(
    parent_school_id: str, session_id: str, principal: CurrentPrincipal, pool: Pool
) -> dict[str, Any]:
    """A session with enrolment, attendance and its attendance rate."""
    return await parent_schools.get_session(pool, principal, parent_school_id, session_id)


@router.post(SESSION + "/enrolments")
async def enrol(
    parent_school_id: str, session_id: str, body: EnrolIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Enrol guardians in a session (the expected attendance)."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: parent_schools.enrol(conn, principal, parent_school_id, session_id, body),
        status_code=200,
    )


@router.post(SESSION + "/held")
async def session_held(
    parent_school_id: str,
    session_id: str,
    request: Request,
    principal: CurrentPrincipal,
    clock: CurrentClock,
    pool: Pool,
) -> Any:
    """Record that a scheduled session took place."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: parent_schools.mark_held(conn, principal, clock, parent_school_id, session_id),
        status_code=200,
    )


@router.post(SESSION + "/attendance")
async def record_attendance(
    parent_school_id: str,
    session_id: str,
    body: AttendanceIn,
    request: Request,
    principal: CurrentPrincipal,
    clock: CurrentClock,
    pool: Pool,
) -> Any:
    """Record attendance per guardian (the latest record counts; unchanged records publish nothing)."""
    return await idempotency.write(
        request,
        principal,
        pool,
        lambda conn: parent_schools.record_attendance(conn, principal, clock, parent_school_id, session_id, body),
        status_code=200,
    )


@router.get("/guardians/{guardian_id}/attendance")
async def guardian_attendance(guardian_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A guardian's attendance rate over the held sessions they were expected at."""
    return await parent_schools.guardian_attendance(pool, principal, guardian_id)
