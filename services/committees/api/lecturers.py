"""Routes of the lecturer group and publicity lectures: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import subtree_list, unknown
from services.committees.schemas import LectureIn, LectureOut, LecturerIn, LecturerLeftOut, LecturerOut
from services.committees.usecases import lecturers
from shared import openapi, versions
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["lecturers"])


@router.post("/lecturers", status_code=201, response_model=LecturerOut, responses=unknown("org_unit_id", "staff_id"))
async def add_lecturer(body: LecturerIn, w: Writes) -> Any:
    """Add a member of the lecturer group (staff or, by name, an outside lecturer)."""
    return await w.run(lecturers.add_lecturer, body, replayed=lecturers.audit_lecturer)


subtree_list(router, "/lecturers", LecturerOut, lecturers.list_lecturers)


@router.delete("/lecturers/{lecturer_id}", response_model=LecturerLeftOut, responses=openapi.errors(404))
async def remove_lecturer(lecturer_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """A member leaves the lecturer group (`lecturer.left`); their lectures stay counted."""
    return await w.run(lecturers.remove_lecturer, lecturer_id, if_match=if_match)


@router.post(
    "/lectures",
    status_code=201,
    response_model=LectureOut,
    responses={**unknown("lecturer_id", "audience_org_unit_ids"), **openapi.errors(409)},
)
async def record_lecture(body: LectureIn, w: Writes) -> Any:
    """Record a publicity lecture given to audience org units (`lecture.given`)."""
    return await w.run(lecturers.record_lecture, body)


subtree_list(router, "/lectures", LectureOut, lecturers.list_lectures)
