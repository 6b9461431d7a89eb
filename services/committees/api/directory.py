"""Directory routes: org units, staff, students, families and guardians."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from services.committees.api.common import MAX_LIMIT, after, page, require_write, unit_or_404, write_directory
from services.committees.domain.rules import TEACHERS, people_access, redact
from services.committees.schemas import (
    FamilyIn,
    FamilyOut,
    FamilyPatch,
    GuardianIn,
    OrgUnitIn,
    OrgUnitPatch,
    StaffIn,
    StaffOut,
    StaffPage,
    StaffPatch,
    StudentIn,
    StudentOut,
    StudentPage,
    StudentPatch,
)
from services.committees.store import directory as store
from services.committees.store import org_units, upserts
from shared import audit, idempotency, scope
from shared.auth import ADMINS, CurrentPrincipal, Principal, Role
from shared.contracts.committees import StaffLeft, StudentLeft
from shared.events import occurred_at
from shared.outbox import add_event
from shared.problems import Problem, conflict, not_found
from shared.web import Pool

router = APIRouter(prefix="/api/v1", tags=["directory"])
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
READERS = (*ADMINS, *TEACHERS, Role.AUDITOR)


async def _scope(pool: asyncpg.Pool, principal: Principal, under: str | None) -> str:
    """The org path a list covers: `under` (an org unit id) or the caller's own subtree; 403 outside it."""
    return scope.narrow(principal, None if under is None else (await unit_or_404(pool, under))["org_path"])


def _replay_audited(audit_fn: Any, principal: Principal) -> idempotency.Replayed:
    """A replayed answer carries the same personal data as the first one: audit it the same way."""

    async def replay(conn: asyncpg.Connection, body: Any) -> None:
        await audit_fn(conn, principal, body, "write")

    return replay


# --- org units: names of units are public to every signed-in caller -------------------------------------


@router.get("/org-units")
async def list_org_units(
    principal: CurrentPrincipal,
    pool: Pool,
    under: str | None = None,
    level: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Org units in a subtree (default: the whole city), by id."""
    path = (await unit_or_404(pool, under))["org_path"] if under else "/"
    rows = await org_units.list_org_units(pool, path if under else "", level, after(cursor), limit + 1)
    return page(rows, limit, "org_unit_id")


@router.get("/org-units/{org_unit_id}")
async def get_org_unit(org_unit_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """One org unit."""
    unit = await org_units.get_org_unit(pool, org_unit_id)
    if unit is None:
        raise not_found("org unit")
    return unit


@router.post("/org-units", status_code=201)
async def create_org_unit(body: OrgUnitIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Add an org unit under a parent inside the caller's scope."""
    parent = await unit_or_404(pool, body.parent_id)
    require_write(principal, parent["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if await org_units.get_org_unit(conn, body.org_unit_id):
            raise conflict(f"org unit {body.org_unit_id} already exists")
        await write_directory(conn, "org_units", body.model_dump(mode="json"), [body.parent_id], set())
        return await org_units.get_org_unit(conn, body.org_unit_id) or {}

    return await idempotency.write(request, principal, pool, work)


@router.patch("/org-units/{org_unit_id}")
async def update_org_unit(
    org_unit_id: str, body: OrgUnitPatch, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Rename an org unit or change a school's type."""
    unit = await unit_or_404(pool, org_unit_id)
    require_write(principal, unit["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        raw = {k: unit[k] for k in ("org_unit_id", "parent_id", "level", "name", "school_type")}
        raw.update(body.model_dump(mode="json", exclude_unset=True))
        await write_directory(conn, "org_units", raw, [org_unit_id, unit["parent_id"]], set())
        return await org_units.get_org_unit(conn, org_unit_id) or {}

    return await idempotency.write(request, principal, pool, work, status_code=200)


# --- staff -----------------------------------------------------------------------------------------------


def _staff_view(principal: Principal, row: dict[str, Any]) -> dict[str, Any] | None:
    """Admins in scope and colleagues of the same school see everything; auditors see no personal fields."""
    if principal.has(*ADMINS, *TEACHERS) and scope.covers(principal, row["org_path"]):
        return row
    if principal.has(Role.AUDITOR) and scope.covers(principal, row["org_path"]):
        return redact(row, personal=False)
    return None


@router.get("/staff", response_model=StaffPage, response_model_exclude_unset=True)
async def list_staff(
    principal: CurrentPrincipal,
    pool: Pool,
    under: str | None = None,
    role: str | None = None,
    class_id: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Active staff in a subtree, filtered by role or class."""
    principal.require(*READERS)
    path = await _scope(pool, principal, under)
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.list_staff(conn, path, role, class_id, after(cursor), limit + 1)
        out = page([v for r in rows if (v := _staff_view(principal, r))], limit, "staff_id")
        paths = {x["staff_id"]: x["org_path"] for x in out["items"]}
        await audit.record(
            conn,
            principal,
            action="list",
            resource_type="staff",
            org_path=path,
            subject_ids=list(paths),
            subject_paths=paths,
        )
    return out


@router.get("/staff/{staff_id}", response_model=StaffOut, response_model_exclude_unset=True)
async def get_staff(staff_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """One staff member."""
    principal.require(*READERS)
    async with pool.acquire() as conn, conn.transaction():
        row = await store.get_staff(conn, staff_id)
        if row is None:
            raise not_found("staff member")
        view = _staff_view(principal, row)
        if view is None:
            raise scope.forbidden()
        await _audit_staff(conn, principal, row, "read")
    return view


async def _audit_staff(
    conn: asyncpg.Connection, principal: Principal, row: dict[str, Any], action: audit.Action
) -> None:
    await audit.record(
        conn,
        principal,
        action=action,
        resource_type="staff",
        resource_id=row["staff_id"],
        org_path=row["org_path"],
        subject_ids=[row["staff_id"]],
    )


@router.post("/staff", status_code=201, response_model=StaffOut)
async def create_staff(body: StaffIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Register a staff member at a school (or district office)."""
    unit = await unit_or_404(pool, body.org_unit_id)
    require_write(principal, unit["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if await store.get_staff(conn, body.staff_id):
            raise conflict(f"staff member {body.staff_id} already exists")
        raw = body.model_dump(mode="json")
        await write_directory(conn, "staff", raw, [body.org_unit_id, *body.class_ids, body.head_class_id or ""], set())
        created = await store.get_staff(conn, body.staff_id) or {}
        await _audit_staff(conn, principal, created, "write")
        return created

    return await idempotency.write(request, principal, pool, work, replayed=_replay_audited(_audit_staff, principal))


@router.patch("/staff/{staff_id}", response_model=StaffOut)
async def update_staff(
    staff_id: str, body: StaffPatch, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Change a staff member's roles, classes or contact."""
    row = await store.get_staff(pool, staff_id)
    if row is None:
        raise not_found("staff member")
    require_write(principal, row["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        raw = {k: row[k] for k in ("staff_id", "name", "gender", "phone", "org_unit_id", "roles", "class_ids")}
        raw["head_class_id"] = row["head_class_id"]
        raw.update(body.model_dump(mode="json", exclude_unset=True))
        units = [raw["org_unit_id"], *raw["class_ids"], raw["head_class_id"] or ""]
        await write_directory(conn, "staff", raw, units, set())
        updated = await store.get_staff(conn, staff_id) or {}
        await _audit_staff(conn, principal, updated, "write")
        return updated

    return await idempotency.write(
        request, principal, pool, work, status_code=200, replayed=_replay_audited(_audit_staff, principal)
    )


@router.delete("/staff/{staff_id}")
async def staff_left(staff_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """A staff member left: deactivate and publish `staff.left`."""
    row = await store.get_staff(pool, staff_id)
    if row is None:
        raise not_found("staff member")
    require_write(principal, row["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if await store.update_staff_left(conn, staff_id):
            await add_event(conn, StaffLeft(staff_id=staff_id, org_path=row["org_path"], occurred_at=occurred_at()))
        return {"staff_id": staff_id, "active": False}

    return await idempotency.write(request, principal, pool, work, status_code=200)


# --- students ----------------------------------------------------------------------------------------------


async def _student_view(
    pool: asyncpg.Connection | asyncpg.Pool, principal: Principal, row: dict[str, Any]
) -> dict[str, Any] | None:
    classes = await store.get_teacher_classes(pool, principal.staff_id) if principal.has(*TEACHERS) else frozenset()
    access = people_access(principal, row["org_path"], row["class_id"], classes)
    return redact(row, access.personal) if access.read else None


@router.get("/students", response_model=StudentPage, response_model_exclude_unset=True)
async def list_students(
    principal: CurrentPrincipal,
    pool: Pool,
    under: str | None = None,
    class_id: str | None = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Active students in a subtree or class; teachers see their own classes."""
    principal.require(*READERS)
    personal = True
    if principal.has(*ADMINS, Role.AUDITOR):
        path: str | None = await _scope(pool, principal, under)
        classes = [class_id] if class_id else None
        personal = principal.has(*ADMINS)
    else:
        mine = await store.get_teacher_classes(pool, principal.staff_id)
        if class_id is not None and class_id not in mine:
            raise scope.forbidden("teachers see only the classes they teach")
        # a teacher's classes, and only inside the school their token names
        path = (await unit_or_404(pool, under))["org_path"] if under else principal.org_path
        scope.require(principal, path)
        classes = [class_id] if class_id else sorted(mine)
    async with pool.acquire() as conn, conn.transaction():
        rows = await store.list_students(conn, path, classes, after(cursor), limit + 1)
        out = page([redact(r, personal) for r in rows], limit, "student_id")
        paths = {x["student_id"]: x["org_path"] for x in out["items"]}
        await audit.record(
            conn,
            principal,
            action="list",
            resource_type="student",
            org_path=path or "/",
            subject_ids=list(paths),
            subject_paths=paths,
        )
    return out


@router.get("/students/{student_id}", response_model=StudentOut, response_model_exclude_unset=True)
async def get_student(student_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """One student (personal fields only for admins in scope and the student's teachers)."""
    principal.require(*READERS)
    async with pool.acquire() as conn, conn.transaction():
        row = await store.get_student(conn, student_id)
        if row is None:
            raise not_found("student")
        view = await _student_view(conn, principal, row)
        if view is None:
            raise scope.forbidden()
        await _audit_student(conn, principal, row, "read")
    return view


async def _audit_student(
    conn: asyncpg.Connection, principal: Principal, row: dict[str, Any], action: audit.Action
) -> None:
    await audit.record(
        conn,
        principal,
        action=action,
        resource_type="student",
        resource_id=row["student_id"],
        org_path=row["org_path"],
        subject_ids=[row["student_id"]],
    )


async def _family_no(conn: asyncpg.Connection | asyncpg.Pool, family_id: str) -> str:
    no: str | None = await conn.fetchval("SELECT family_no FROM families WHERE family_id = $1", family_id)
    if no is None:
        raise Problem(422, "Invalid request", "unknown family", errors=[{"pointer": "/family_id", "detail": "unknown"}])
    return no


async def _require_family_write(conn: asyncpg.Connection | asyncpg.Pool, principal: Principal, family_id: str) -> None:
    """Linking a child to a family touches every school its children attend: write scope over all of them."""
    paths = await conn.fetch("SELECT org_path FROM students WHERE family_id = $1 AND active", family_id)
    require_write(principal, *(p["org_path"] for p in paths))


@router.post("/students", status_code=201, response_model=StudentOut)
async def create_student(body: StudentIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Register a student in a class and a family; the service assigns the pseudonymous student_id."""
    unit = await unit_or_404(pool, body.class_id)
    require_write(principal, unit["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if await store.get_student_by_no(conn, body.student_no):
            raise conflict("a student with this student_no already exists")
        raw = body.model_dump(mode="json", exclude={"family_id"})
        raw["family_no"] = await _family_no(conn, body.family_id)
        await _require_family_write(conn, principal, body.family_id)
        await write_directory(conn, "students", raw, [body.class_id], {raw["family_no"]})
        created = await store.get_student_by_no(conn, body.student_no) or {}
        await _audit_student(conn, principal, created, "write")
        return created

    return await idempotency.write(request, principal, pool, work, replayed=_replay_audited(_audit_student, principal))


@router.patch("/students/{student_id}", response_model=StudentOut)
async def update_student(
    student_id: str, body: StudentPatch, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Move a student to another class or family, or correct their record."""
    row = await store.get_student(pool, student_id)
    if row is None:
        raise not_found("student")
    require_write(principal, row["org_path"])
    if body.class_id:
        require_write(principal, (await unit_or_404(pool, body.class_id))["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        raw = {k: row[k] for k in ("student_no", "name", "gender", "birth_date", "national_id", "class_id")}
        changes = body.model_dump(mode="json", exclude_unset=True)
        family_id = changes.pop("family_id", None) or row["family_id"]
        raw.update(changes)
        raw["family_no"] = await _family_no(conn, family_id)
        if family_id != row["family_id"]:  # the child leaves one family for another: both change
            await _require_family_write(conn, principal, row["family_id"])
            await _require_family_write(conn, principal, family_id)
        await write_directory(conn, "students", raw, [raw["class_id"]], {raw["family_no"]})
        updated = await store.get_student(conn, student_id) or {}
        require_write(principal, updated["org_path"])  # the target after the change, too (rolls back)
        await _audit_student(conn, principal, updated, "write")
        return updated

    return await idempotency.write(
        request, principal, pool, work, status_code=200, replayed=_replay_audited(_audit_student, principal)
    )


@router.delete("/students/{student_id}")
async def student_left(student_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """A student left the city's schools: `student.left`, and their family's facts change."""
    row = await store.get_student(pool, student_id)
    if row is None:
        raise not_found("student")
    require_write(principal, row["org_path"])

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        await upserts.prepare(conn)
        if await store.update_student_left(conn, student_id):
            await add_event(
                conn, StudentLeft(student_id=student_id, org_path=row["org_path"], occurred_at=occurred_at())
            )
            await upserts.publish_family_facts(conn, upserts.Trace.now())
        return {"student_id": student_id, "active": False}

    return await idempotency.write(request, principal, pool, work, status_code=200)


# --- families and guardians ----------------------------------------------------------------------------------


async def _family_access(
    pool: asyncpg.Connection | asyncpg.Pool, principal: Principal, fam: dict[str, Any], write: bool
) -> bool:
    """Reading a family: through any of its students; changing it: over all of them (no students: bureau admins)."""
    if not fam["students"]:  # no child (yet, or any more) ties it to a school: the bureau's alone
        return principal.has(Role.BUREAU_ADMIN)
    if write:
        return principal.has(*ADMINS) and all(scope.covers(principal, s["org_path"]) for s in fam["students"])
    classes = await store.get_teacher_classes(pool, principal.staff_id) if principal.has(*TEACHERS) else frozenset()
    return any(people_access(principal, s["org_path"], s["class_id"], classes).personal for s in fam["students"])


async def _audit_family(
    conn: asyncpg.Connection, principal: Principal, fam: dict[str, Any], action: audit.Action
) -> None:
    """A family read: its org path is the first of its students' (families without students: the caller's)."""
    paths = sorted(s["org_path"] for s in fam["students"])
    await audit.record(
        conn,
        principal,
        action=action,
        resource_type="family",
        resource_id=fam["family_id"],
        org_path=paths[0] if paths else principal.org_path,
        subject_ids=[
            fam["family_id"],
            *(g["guardian_id"] for g in fam["guardians"]),
            *(s["student_id"] for s in fam["students"]),
        ],
        subject_paths={s["student_id"]: s["org_path"] for s in fam["students"]},
    )


@router.post("/families", status_code=201, response_model=FamilyOut)
async def create_family(body: FamilyIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Register a family with its guardians (students join it when registered)."""
    principal.require(*ADMINS)

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if await conn.fetchval("SELECT 1 FROM families WHERE family_no = $1", body.family_no):
            raise conflict("a family with this family_no already exists")
        fam = body.model_dump(mode="json", exclude={"guardians"})
        await write_directory(conn, "families", fam, [], set(), publish_families=False)
        for i, g in enumerate(body.guardians):
            try:
                raw = {**g.model_dump(mode="json"), "family_no": body.family_no}
                await write_directory(conn, "guardians", raw, [], {body.family_no}, publish_families=False)
            except Problem as exc:
                for e in exc.errors or []:
                    e["pointer"] = f"/guardians/{i}{e['pointer']}"
                raise
        await upserts.publish_family_facts(conn, upserts.Trace.now())
        family_id = await conn.fetchval("SELECT family_id FROM families WHERE family_no = $1", body.family_no)
        created = await store.get_family(conn, family_id) or {}
        await _audit_family(conn, principal, created, "write")
        return created

    return await idempotency.write(request, principal, pool, work, replayed=_replay_audited(_audit_family, principal))


@router.get("/families/{family_id}", response_model=FamilyOut)
async def get_family(family_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A family with its guardians and students, for callers with personal access to one of its students."""
    principal.require(*ADMINS, *TEACHERS)
    async with pool.acquire() as conn, conn.transaction():
        fam = await store.get_family(conn, family_id)
        if fam is None:
            raise not_found("family")
        if not await _family_access(conn, principal, fam, write=False):
            raise scope.forbidden()
        await _audit_family(conn, principal, fam, "read")
    return fam


@router.patch("/families/{family_id}", response_model=FamilyOut)
async def update_family(
    family_id: str, body: FamilyPatch, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Change whether parents work away, the living arrangement or the address."""
    fam = await store.get_family(pool, family_id)
    if fam is None:
        raise not_found("family")
    if not await _family_access(pool, principal, fam, write=True):
        raise scope.forbidden("requires an admin role covering every one of the family's students")

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        raw = {k: fam[k] for k in ("family_no", "parents_work_away", "living_arrangement", "address")}
        raw.update(body.model_dump(mode="json", exclude_unset=True))
        await write_directory(conn, "families", raw, [], set())
        updated = await store.get_family(conn, family_id) or {}
        await _audit_family(conn, principal, updated, "write")
        return updated

    return await idempotency.write(
        request, principal, pool, work, status_code=200, replayed=_replay_audited(_audit_family, principal)
    )


@router.post("/families/{family_id}/guardians", status_code=201, response_model=FamilyOut)
async def add_guardian(
    family_id: str, body: GuardianIn, request: Request, principal: CurrentPrincipal, pool: Pool
) -> Any:
    """Add a guardian to a family (the family's facts change: `family.changed`)."""
    fam = await store.get_family(pool, family_id)
    if fam is None:
        raise not_found("family")
    if not await _family_access(pool, principal, fam, write=True):
        raise scope.forbidden("requires an admin role covering every one of the family's students")

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        if await conn.fetchval("SELECT 1 FROM guardians WHERE guardian_no = $1", body.guardian_no):
            raise conflict("a guardian with this guardian_no already exists")
        raw = {**body.model_dump(mode="json"), "family_no": fam["family_no"]}
        await write_directory(conn, "guardians", raw, [], {fam["family_no"]})
        updated = await store.get_family(conn, family_id) or {}
        await _audit_family(conn, principal, updated, "write")
        return updated

    return await idempotency.write(request, principal, pool, work, replayed=_replay_audited(_audit_family, principal))
