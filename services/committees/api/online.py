"""Routes of online parent schools: attendance the online platform reports, completion per guardian."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.committees.api.common import Cursor, Limit
from services.committees.schemas import AttendanceOut, GuardianCompletionOut, OnlineAttendanceIn
from services.committees.usecases import online
from shared import openapi, pages
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["parent schools"])
ONE = "/parent-schools/{parent_school_id}"


@router.post(
    ONE + "/sessions/{session_id}/online-attendance",
    response_model=AttendanceOut,
    responses=openapi.errors({404: "no such parent school, session or guardian"}, 409),
)
async def record_online_attendance(parent_school_id: str, session_id: str, body: OnlineAttendanceIn, w: Writes) -> Any:
    """Called by the online platform (with an administrator's token over the parent school): minutes each guardian
    was connected to an online or mixed session; attending = at least `online_min_minutes` (the latest report
    counts; 409 for an in-person session)."""
    min_minutes = w.request.app.state.settings.online_min_minutes
    return await w.run(online.record_online_attendance, parent_school_id, session_id, body, min_minutes)


@router.get(ONE + "/completion", response_model=pages.Page[GuardianCompletionOut], responses=openapi.errors(404))
async def list_completion(
    parent_school_id: str, request: Request, principal: CurrentPrincipal, pool: Pool, cursor: Cursor, limit: Limit = 100
) -> dict[str, Any]:
    """Per guardian expected at the parent school: held sessions attended (online, in person) and whether they
    completed it (at least `completion_share` of the held sessions)."""
    share = request.app.state.settings.completion_share
    return await online.completion(pool, principal, parent_school_id, cursor, limit, share)
