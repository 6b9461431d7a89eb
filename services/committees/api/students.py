"""Routes of students: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import UNKNOWN_UNDER, Cursor, Limit, Under, unknown
from services.committees.schemas import StudentIn, StudentLeftOut, StudentOut, StudentPatch
from services.committees.usecases import students
from shared import openapi, pages, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["students"])


@router.get(
    "/students", response_model=pages.Page[StudentOut], response_model_exclude_unset=True, responses=UNKNOWN_UNDER
)
async def list_students(
    principal: CurrentPrincipal,
    pool: Pool,
    cursor: Cursor,
    under: Under = None,
    class_id: str | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Active students in a subtree or class; teachers see their own classes."""
    return await students.list_students(pool, principal, under, class_id, cursor, limit)


@router.get("/students/{student_id}", response_model=StudentOut, response_model_exclude_unset=True)
async def get_student(student_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> dict[str, Any]:
    """One student (personal fields only for admins in scope and the student's teachers)."""
    student = await students.get(pool, principal, student_id)
    tag(student["version"])
    return student


@router.post(
    "/students",
    status_code=201,
    response_model=StudentOut,
    responses=openapi.errors(409) | unknown("class_id", "family_id"),
)
async def create_student(body: StudentIn, w: Writes) -> Any:
    """Register a student in a class and a family; the service assigns the pseudonymous student_id."""
    return await w.run(students.create, body, replayed=students.audit_answer)


@router.patch("/students/{student_id}", response_model=StudentOut)
async def update_student(student_id: str, body: StudentPatch, w: Writes, if_match: versions.IfMatchRequired) -> Any:
    """Move a student to another class or family, or correct their record."""
    return await w.run(students.update, student_id, body, if_match, replayed=students.audit_answer)


@router.delete("/students/{student_id}", response_model=StudentLeftOut)
async def mark_student_left(student_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """A student left the city's schools: `student.left`, and their family's facts change."""
    return await w.run(students.leave, student_id, if_match)
