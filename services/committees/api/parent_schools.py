"""Routes of parent schools, their sessions, enrolment and attendance: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import subtree_list, unknown
from services.committees.schemas import (
    AttendanceIn,
    AttendanceOut,
    EnrolIn,
    EnrolmentOut,
    GuardianAttendanceOut,
    ParentSchoolDetail,
    ParentSchoolIn,
    ParentSchoolOut,
    SessionIn,
    SessionOut,
    SessionScheduledOut,
)
from services.committees.usecases import parent_schools
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["parent schools"])
ONE = "/parent-schools/{parent_school_id}"
SESSION = ONE + "/sessions/{session_id}"


@router.post("/parent-schools", status_code=201, response_model=ParentSchoolOut, responses=unknown("org_unit_id"))
async def establish_parent_school(body: ParentSchoolIn, w: Writes) -> Any:
    """Establish a county-level, school-level or online parent school."""
    return await w.run(parent_schools.establish, body)


subtree_list(router, "/parent-schools", ParentSchoolOut, parent_schools.list_parent_schools)


@router.get(ONE, response_model=ParentSchoolDetail, response_model_exclude_unset=True)
async def get_parent_school(
    parent_school_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag
) -> dict[str, Any]:
    """A parent school and its sessions."""
    return tag.of(await parent_schools.get(pool, principal, parent_school_id))


@router.post(ONE + "/sessions", status_code=201, response_model=SessionScheduledOut)
async def schedule_session(parent_school_id: str, body: SessionIn, w: Writes) -> Any:
    """Schedule a session (topic, date, mode, speaker); an online or mixed one gets a join link (the one given, or
    the platform's page of the session)."""
    join_base = w.request.app.state.settings.online_join_base
    return await w.run(parent_schools.schedule_session, parent_school_id, body, join_base)


@router.get(SESSION, response_model=SessionOut, response_model_exclude_unset=True)
async def get_session(
    parent_school_id: str, session_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag
) -> Any:
    """A session with enrolment, attendance and its attendance rate."""
    return tag.of(await parent_schools.get_session(pool, principal, parent_school_id, session_id))


@router.post(SESSION + "/enrolments", response_model=EnrolmentOut)
async def enrol_guardians(parent_school_id: str, session_id: str, body: EnrolIn, w: Writes) -> Any:
    """Enrol guardians in a session (the expected attendance)."""
    return await w.run(parent_schools.enrol, parent_school_id, session_id, body)


@router.post(SESSION + "/held", response_model=SessionOut, responses=openapi.errors(409))
async def mark_session_held(parent_school_id: str, session_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """Record that a scheduled session took place."""
    return await w.run(parent_schools.mark_held, parent_school_id, session_id, if_match=if_match)


@router.post(SESSION + "/attendance", response_model=AttendanceOut)
async def record_attendance(parent_school_id: str, session_id: str, body: AttendanceIn, w: Writes) -> Any:
    """Record attendance per guardian (the latest record counts; unchanged records publish nothing)."""
    return await w.run(parent_schools.record_attendance, parent_school_id, session_id, body)


@router.get("/guardians/{guardian_id}/attendance", response_model=GuardianAttendanceOut)
async def get_guardian_attendance(guardian_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A guardian's attendance rate over the held sessions they were expected at."""
    return await parent_schools.guardian_attendance(pool, principal, guardian_id)
