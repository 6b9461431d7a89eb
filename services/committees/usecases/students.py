"""Students: list and read (audited; teachers see their own classes), register, move or correct, leave."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain import duplicates
from services.committees.domain.rules import TEACHERS, family_scope, people_access, redact
from services.committees.schemas import MergeIn, StudentIn, StudentPatch
from services.committees.store import directory as store
from services.committees.usecases.common import (
    READERS,
    audit_page,
    page,
    read_person,
    require_change,
    require_write,
    under_path,
    writable_unit,
)
from services.committees.usecases.directory import answer_audit, publish_family_facts, write_record
from shared import audit, scope
from shared.auth import ADMINS, Principal, Role
from shared.clock import Clock
from shared.contracts.committees import StudentLeft, StudentMerged
from shared.db import Conn
from shared.outbox import add_event
from shared.problems import Problem, conflict, field_error, found, not_found, unknown
from shared.writes import Write

FIELDS = ("student_no", "name", "gender", "birth_date", "national_id", "class_id")

audit_answer = answer_audit("student")


async def _get(conn: Conn, student_id: str, *, lock: bool = False) -> dict[str, Any]:
    return found(await store.get_student(conn, student_id, lock=lock), "student")


async def _view(conn: Conn, principal: Principal, row: dict[str, Any]) -> dict[str, Any] | None:
    classes = await store.get_teacher_classes(conn, principal.staff_id) if principal.has(*TEACHERS) else frozenset()
    access = people_access(principal, row["org_path"], row["class_id"], classes)
    return redact(row, access.personal) if access.read else None


async def _family_no(conn: Conn, family_id: str) -> str:
    no = await store.get_family_no(conn, family_id)
    if no is None:
        raise unknown("/family_id", "family")
    return no


async def _require_family_write(conn: Conn, principal: Principal, family_id: str) -> None:
    """Linking a child to a family touches every school its children attend: write scope over all of them (a family
    with no child: over the unit that registered it; an imported one: bureau admins only)."""
    paths = family_scope(
        await store.list_family_student_paths(conn, family_id), await store.get_family_registrar(conn, family_id)
    )
    if not paths:
        principal.require(Role.BUREAU_ADMIN)
    require_write(principal, *paths)


async def list_students(
    pool: asyncpg.Pool, principal: Principal, under: str | None, after: str | None, limit: int, *, class_id: str | None
) -> dict[str, Any]:
    """Active students in a subtree or class; teachers see their own classes; the read is audited."""
    principal.require(*READERS)
    async with pool.acquire() as conn, conn.transaction():
        subtree = await under_path(conn, under)
        personal = True
        if principal.has(*ADMINS, Role.AUDITOR):
            path: str | None = scope.narrow(principal, subtree)
            classes = [class_id] if class_id else None
            personal = principal.has(*ADMINS)
        else:
            mine = await store.get_teacher_classes(conn, principal.staff_id)
            if class_id is not None and class_id not in mine:
                raise scope.forbidden("teachers see only the classes they teach")
            # a teacher's classes, and only inside the school their token names
            path = subtree or principal.org_path
            scope.require(principal, path)
            classes = [class_id] if class_id else sorted(mine)
        rows = await store.list_students(conn, path, classes, after, limit + 1)
        out = page([redact(r, personal) for r in rows], limit, "student_id")
        await audit_page(conn, principal, "student", path or "/", out["items"], "student_id")
    return out


async def get(pool: asyncpg.Pool, principal: Principal, student_id: str) -> dict[str, Any]:
    """One student (personal fields only for admins in scope and the student's teachers); the read is audited."""
    return await read_person(
        pool, principal, "student", student_id, _get, lambda conn, row: _view(conn, principal, row)
    )


async def create(w: Write, body: StudentIn) -> dict[str, Any]:
    """Register a student in a class and a family; the service assigns the pseudonymous student_id."""
    await writable_unit(w, body.class_id, "/class_id")
    if await store.get_student_by_no(w.conn, body.student_no):
        raise conflict("a student with this student_no already exists")
    await _national_id_free(w.conn, body.national_id, None)
    raw = body.model_dump(mode="json", exclude={"family_id"})
    raw["family_no"] = await _family_no(w.conn, body.family_id)
    await _require_family_write(w.conn, w.principal, body.family_id)
    await _write_student(w.conn, w.clock, raw, body.class_id)
    created = await store.get_student_by_no(w.conn, body.student_no) or {}
    created["duplicate_candidates"] = await _candidates(w.conn, created["student_id"], created["org_path"])
    return await audit_answer(w.conn, w.principal, created)


def _national_id_taken() -> Problem:
    detail = "this national ID belongs to another student record (the same child registered twice?)"
    return Problem(409, "Conflict", detail, errors=[field_error("/national_id", detail)])


async def _national_id_free(conn: Conn, national_id: str | None, student_id: str | None) -> None:
    """409 naming the field when another record holds the national ID (unique where present)."""
    holder = await store.get_national_id_holder(conn, national_id) if national_id else None
    if holder is not None and holder != student_id:
        raise _national_id_taken()


async def _write_student(conn: asyncpg.Connection, clock: Clock, raw: dict[str, Any], class_id: str) -> None:
    """Write a student record; the same 409 when a concurrent write took its national ID after the check above
    (the unique index decides: the two writes both passed the check before either committed)."""
    try:
        await write_record(conn, clock, "students", raw, [class_id], {raw["family_no"]})
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != store.NATIONAL_ID_INDEX:
            raise
        raise _national_id_taken() from exc


async def _candidates(conn: Conn, student_id: str, org_path: str) -> list[dict[str, Any]]:
    """The likely duplicates of a record (the duplicate rule over the records that could be the same child)."""
    rows = await store.list_duplicate_pool(conn, student_id, duplicates.county_of(org_path))
    pool = [_child(r) for r in rows]
    [me] = [c for c in pool if c.student_id == student_id]
    return [_candidate(c) for c in duplicates.candidates(me, pool)]


def _child(r: dict[str, Any]) -> duplicates.Child:
    county = duplicates.county_of(r["org_path"])
    return duplicates.Child(r["student_id"], r["name"], r["birth_date"], county, frozenset(r["phones"]))


def _candidate(c: duplicates.Candidate) -> dict[str, Any]:
    return {"student_id": c.student_id, "score": c.score, "reasons": list(c.reasons)}


async def imported_candidates(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The students this transaction's import created that are likely the same child as another record, each with
    its candidates (the same rule as on create, over the pairs the store finds worth scoring)."""
    pairs = await store.list_imported_pairs(conn)
    if not pairs:
        return []
    facts = {r["student_id"]: _child(r) for r in await store.list_duplicate_facts(conn, sorted({*sum(pairs, ())}))}
    others: dict[str, list[duplicates.Child]] = {}
    for a, b in pairs:
        others.setdefault(a, []).append(facts[b])
    found = {a: duplicates.candidates(facts[a], bs) for a, bs in sorted(others.items())}
    return [{"student_id": a, "candidates": [_candidate(c) for c in cs]} for a, cs in found.items() if cs]


async def list_duplicates(pool: asyncpg.Pool, principal: Principal, student_id: str) -> dict[str, Any]:
    """The records likely to be the same child (for admins who may change the student); audited: the evidence
    (a shared guardian phone, a birth date) is personal."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _get(conn, student_id)
        require_write(principal, row["org_path"])
        found = await _candidates(conn, student_id, row["org_path"])
        await audit.record(
            conn,
            principal,
            action="read",
            resource_type="student",
            resource_id=student_id,
            org_path=row["org_path"],
            subject_ids=[student_id, *(c["student_id"] for c in found)],
        )
    return {"student_id": student_id, "candidates": found}


async def merge(w: Write, student_id: str, body: MergeIn) -> dict[str, Any]:
    """Merge a duplicate record into this one (the same child registered twice): the duplicate is gone like a
    leaver and `student.merged` tells the other services to move what they hold under it to this one."""
    rows = await store.list_students_locked(w.conn, sorted({student_id, body.duplicate_id}))
    keep, dup = rows.get(student_id), rows.get(body.duplicate_id)
    if keep is None:
        raise not_found("student")
    if dup is None:
        raise unknown("/duplicate_id", "student")
    require_write(w.principal, keep["org_path"], dup["org_path"])
    w.check(keep["version"])
    refusal = duplicates.merge_refusal(keep, dup)
    if refusal is not None:
        pointer, reason = refusal
        raise Problem(409, "Conflict", reason, errors=[field_error(pointer, reason)])
    await store.update_student_merged(w.conn, dup["student_id"], student_id)
    event = StudentMerged(
        student_id=dup["student_id"], merged_into=student_id, org_path=dup["org_path"], occurred_at=w.clock.now()
    )
    await add_event(w.conn, event)
    await publish_family_facts(w.conn, w.clock, sorted({dup["family_id"], keep["family_id"]}))
    merged = {**await _get(w.conn, student_id), "merged_id": dup["student_id"]}
    return await audit_answer(w.conn, w.principal, merged)


async def update(w: Write, student_id: str, body: StudentPatch) -> dict[str, Any]:
    """Move a student to another class or family, or correct their record (scope over before and after; 412 when
    `If-Match` names another version)."""
    row = await _get(w.conn, student_id, lock=True)
    require_change(w, row)
    if body.national_id:
        await _national_id_free(w.conn, body.national_id, student_id)
    if body.class_id:
        await writable_unit(w, body.class_id, "/class_id")
    raw = {k: row[k] for k in FIELDS}
    changes = body.model_dump(mode="json", exclude_unset=True)
    family_id = changes.pop("family_id", None) or row["family_id"]
    raw.update(changes)
    raw["family_no"] = await _family_no(w.conn, family_id)
    if family_id != row["family_id"]:  # the child leaves one family for another: both change
        await _require_family_write(w.conn, w.principal, row["family_id"])
        await _require_family_write(w.conn, w.principal, family_id)
    await _write_student(w.conn, w.clock, raw, raw["class_id"])
    updated = await _get(w.conn, student_id)
    require_write(w.principal, updated["org_path"])  # the target after the change, too (rolls back)
    return await audit_answer(w.conn, w.principal, updated)


async def leave(w: Write, student_id: str) -> dict[str, Any]:
    """A student left the city's schools: `student.left`, and their family's facts change."""
    row = await _get(w.conn, student_id, lock=True)
    require_change(w, row)
    family_id = await store.update_student_left(w.conn, student_id)
    if family_id is not None:
        await add_event(w.conn, StudentLeft(student_id=student_id, org_path=row["org_path"], occurred_at=w.clock.now()))
        await publish_family_facts(w.conn, w.clock, [family_id])
    return {"student_id": student_id, "active": False, "version": (await _get(w.conn, student_id))["version"]}
