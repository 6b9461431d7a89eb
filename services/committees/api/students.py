"""Routes of students: parse, call one use case."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.committees.api.common import subtree_list, unknown
from services.committees.schemas import (
    DuplicatesOut,
    MergeIn,
    StudentCreatedOut,
    StudentFilters,
    StudentIn,
    StudentLeftOut,
    StudentMergedOut,
    StudentOut,
    StudentPatch,
)
from services.committees.usecases import students
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["students"])


subtree_list(router, "/students", StudentOut, students.list_students, StudentFilters)


@router.get("/students/{student_id}", response_model=StudentOut, response_model_exclude_unset=True)
async def get_student(student_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> dict[str, Any]:
    """One student (personal fields only for admins in scope and the student's teachers)."""
    return tag.of(await students.get(pool, principal, student_id))


@router.post(
    "/students",
    status_code=201,
    response_model=StudentCreatedOut,
    responses=openapi.errors({409: "the student_no exists, or another record holds the national_id"})
    | unknown("class_id", "family_id"),
)
async def create_student(body: StudentIn, w: Writes) -> Any:
    """Register a student in a class and a family; the service assigns the pseudonymous student_id. The answer
    lists the records that are likely the same child (`duplicate_candidates`, with a score and the evidence)."""
    return await w.run(students.create, body, replayed=students.audit_answer)


@router.get("/students/{student_id}/duplicates", response_model=DuplicatesOut)
async def list_student_duplicates(student_id: str, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Records that are likely the same child (same birth date and a similar name in the county, a guardian phone in
    common), best first, for administrators who may change the student."""
    return await students.list_duplicates(pool, principal, student_id)


@router.post(
    "/students/{student_id}/merge",
    response_model=StudentMergedOut,
    responses=openapi.errors({409: "a record cannot be merged (itself, already merged, or left)"})
    | unknown("duplicate_id"),
)
async def merge_student(student_id: str, body: MergeIn, w: Writes, if_match: versions.IfMatch) -> Any:
    """Merge a duplicate record into this one (the same child registered twice): one `student.merged` event;
    visits, outreach and reporting move what they hold under the duplicate to this record."""
    return await w.run(students.merge, student_id, body, if_match=if_match, replayed=students.audit_answer)


@router.patch("/students/{student_id}", response_model=StudentOut, responses=openapi.errors(409))
async def update_student(student_id: str, body: StudentPatch, w: Writes, if_match: versions.IfMatchRequired) -> Any:
    """Move a student to another class or family, or correct their record."""
    return await w.run(students.update, student_id, body, if_match=if_match, replayed=students.audit_answer)


@router.delete("/students/{student_id}", response_model=StudentLeftOut)
async def mark_student_left(student_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """A student left the city's schools: `student.left`, and their family's facts change."""
    return await w.run(students.leave, student_id, if_match=if_match)
