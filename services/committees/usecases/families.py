"""Families and guardians: register, read (audited), change the facts, add a guardian (`family.changed`)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain.rules import TEACHERS, family_scope, people_access
from services.committees.schemas import FamilyIn, FamilyPatch, GuardianIn
from services.committees.store import directory as store
from services.committees.usecases.directory import patched, publish_family_facts, write_record
from shared import audit, scope
from shared.auth import ADMINS, Principal, Role
from shared.db import Conn
from shared.problems import Problem, conflict, found
from shared.writes import Write

FIELDS = ("family_no", "parents_work_away", "living_arrangement", "address")


def _paths(fam: dict[str, Any]) -> list[str]:
    return family_scope((s["org_path"] for s in fam["students"]), fam["registered_by_path"])


async def _access(conn: Conn, principal: Principal, fam: dict[str, Any], write: bool) -> bool:
    """Reading a family: through any of its students; changing it: over all of them. A family with no child: admins
    over the unit that registered it (an imported one: bureau admins)."""
    paths = _paths(fam)
    if not paths:
        return principal.has(Role.BUREAU_ADMIN)
    if write or not fam["students"]:
        return principal.has(*ADMINS) and all(scope.covers(principal, p) for p in paths)
    classes = await store.get_teacher_classes(conn, principal.staff_id) if principal.has(*TEACHERS) else frozenset()
    return any(people_access(principal, s["org_path"], s["class_id"], classes).personal for s in fam["students"])


async def _get(conn: Conn, family_id: str, *, lock: bool = False) -> dict[str, Any]:
    return found(await store.get_family(conn, family_id, lock=lock), "family")


async def _writable(w: Write, family_id: str) -> dict[str, Any]:
    """The family, locked, when the caller may change it (403) and it is at the version `If-Match` names (412)."""
    fam = await _get(w.conn, family_id, lock=True)
    if not await _access(w.conn, w.principal, fam, write=True):
        raise scope.forbidden("requires an admin role covering every one of the family's students")
    w.check(fam["version"])
    return fam


async def audit_family(
    conn: asyncpg.Connection, principal: Principal, fam: dict[str, Any], action: audit.Action
) -> None:
    """A family read: its org path is the first of its units' (an imported family without students: the caller's)."""
    paths = _paths(fam)
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


async def audit_answer(conn: asyncpg.Connection, principal: Principal, fam: dict[str, Any]) -> None:
    """A write's answer carries the family (guardians' names): audited, when first given and when replayed."""
    await audit_family(conn, principal, fam, "write")


async def _answer(conn: asyncpg.Connection, principal: Principal, family_id: str) -> dict[str, Any]:
    """The family after a write, audited."""
    fam = await _get(conn, family_id)
    await audit_answer(conn, principal, fam)
    return fam


async def create(w: Write, body: FamilyIn) -> dict[str, Any]:
    """Register a family with its guardians (students join it when registered)."""
    w.principal.require(*ADMINS)
    if await store.get_family_id(w.conn, body.family_no):
        raise conflict("a family with this family_no already exists")
    fam = body.model_dump(mode="json", exclude={"guardians"})
    await write_record(w.conn, w.clock, "families", fam, [], set(), publish_families=False)
    for i, g in enumerate(body.guardians):
        try:
            raw = {**g.model_dump(mode="json"), "family_no": body.family_no}
            await write_record(w.conn, w.clock, "guardians", raw, [], {body.family_no}, publish_families=False)
        except Problem as exc:
            for e in exc.errors or []:
                e["pointer"] = f"/guardians/{i}{e['pointer']}"
            raise
    family_id = await store.get_family_id(w.conn, body.family_no)
    assert family_id is not None
    await store.update_family_registrar(w.conn, family_id, w.principal.org_path)
    await publish_family_facts(w.conn, w.clock, [family_id])
    return await _answer(w.conn, w.principal, family_id)


async def get(pool: asyncpg.Pool, principal: Principal, family_id: str) -> dict[str, Any]:
    """A family with its guardians and students, for callers with personal access to one of its students."""
    principal.require(*ADMINS, *TEACHERS)
    async with pool.acquire() as conn, conn.transaction():
        fam = await _get(conn, family_id)
        if not await _access(conn, principal, fam, write=False):
            raise scope.forbidden()
        await audit_family(conn, principal, fam, "read")
    return fam


async def update(w: Write, family_id: str, body: FamilyPatch) -> dict[str, Any]:
    """Change whether parents work away, the living arrangement or the address (412 when `If-Match` names another
    version)."""
    fam = await _writable(w, family_id)
    await write_record(w.conn, w.clock, "families", patched(fam, FIELDS, body), [], set())
    return await _answer(w.conn, w.principal, family_id)


async def add_guardian(w: Write, family_id: str, body: GuardianIn) -> dict[str, Any]:
    """Add a guardian to a family (the family's facts change: `family.changed`)."""
    fam = await _writable(w, family_id)
    if await store.get_guardian_id(w.conn, body.guardian_no):
        raise conflict("a guardian with this guardian_no already exists")
    raw = {**body.model_dump(mode="json"), "family_no": fam["family_no"]}
    await write_record(w.conn, w.clock, "guardians", raw, [], {fam["family_no"]})
    return await _answer(w.conn, w.principal, family_id)
