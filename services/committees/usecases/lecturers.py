"""The lecturer group and its publicity lectures (`lecture.given`)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain.rules import check_lecturer
from services.committees.schemas import LectureIn, LecturerIn
from services.committees.store import directory, org_units
from services.committees.store import lecturers as store
from services.committees.usecases.common import (
    audit_page,
    audit_write,
    decided,
    list_in_subtree,
    list_path,
    page,
    require_change,
    require_write,
    writable_unit,
)
from shared import versions
from shared.auth import Principal
from shared.contracts import committees as ev
from shared.db import Conn
from shared.ids import new_id
from shared.outbox import add_event
from shared.problems import conflict, found, unknown
from shared.writes import Write


async def audit_lecturer(conn: asyncpg.Connection, principal: Principal, lecturer: dict[str, Any]) -> None:
    """The answer to an added lecturer carries a name: audited, when first given and when replayed."""
    subject = lecturer["staff_id"] or lecturer["lecturer_id"]
    await audit_write(conn, principal, "lecturer", lecturer["lecturer_id"], lecturer["org_path"], subject)


async def add_lecturer(w: Write, body: LecturerIn) -> dict[str, Any]:
    """Add a member of the lecturer group (staff or, by name, an outside lecturer)."""
    unit = await writable_unit(w, body.org_unit_id, "/org_unit_id")
    with decided():
        check_lecturer(body.staff_id, body.name)
    if body.staff_id and await directory.get_staff(w.conn, body.staff_id) is None:
        raise unknown("/staff_id", "staff member")
    lec = {"lecturer_id": new_id(), "org_path": unit["org_path"], **body.model_dump()}
    await store.insert_lecturer(w.conn, lec)
    lec["version"] = versions.FIRST
    await audit_lecturer(w.conn, w.principal, lec)
    await add_event(
        w.conn,
        ev.LecturerJoined(
            lecturer_id=lec["lecturer_id"], org_path=lec["org_path"], staff_id=body.staff_id, occurred_at=w.clock.now()
        ),
    )
    return lec


async def remove_lecturer(w: Write, lecturer_id: str) -> dict[str, Any]:
    """A member leaves the lecturer group (their lectures stay counted; 412 when `If-Match` names another
    version)."""
    lecturer = found(await store.get_lecturer(w.conn, lecturer_id, lock=True), "lecturer")
    require_change(w, lecturer)
    version = lecturer["version"]
    if await store.update_lecturer_left(w.conn, lecturer_id):
        version += 1
        await add_event(
            w.conn, ev.LecturerLeft(lecturer_id=lecturer_id, org_path=lecturer["org_path"], occurred_at=w.clock.now())
        )
    return {"lecturer_id": lecturer_id, "org_path": lecturer["org_path"], "active": False, "version": version}


async def list_lecturers(
    pool: asyncpg.Pool, principal: Principal, under: str | None, after: str | None, limit: int
) -> dict[str, Any]:
    """The lecturer group in a subtree (names of outside lecturers); the read is audited."""
    async with pool.acquire() as conn, conn.transaction():
        path = await list_path(conn, principal, under)
        out = page(await store.list_lecturers(conn, path, after, limit + 1), limit, "lecturer_id")
        # a lecturer who is staff is that staff member's data; an outside lecturer is the lecturer record's
        subjects = [{"subject": x["staff_id"] or x["lecturer_id"], "org_path": x["org_path"]} for x in out["items"]]
        await audit_page(conn, principal, "lecturer", path, subjects, "subject")
    return out


async def record_lecture(w: Write, body: LectureIn) -> dict[str, Any]:
    """Record a publicity lecture given to audience org units (`lecture.given`)."""
    lecturer = await store.get_lecturer(w.conn, body.lecturer_id)
    if lecturer is None:
        raise unknown("/lecturer_id", "lecturer")
    require_write(w.principal, lecturer["org_path"])
    if not lecturer["active"]:
        raise conflict("the lecturer has left the lecturer group")
    paths = await org_units.list_org_unit_paths(w.conn, body.audience_org_unit_ids)
    missing = [f"/audience_org_unit_ids/{i}" for i, u in enumerate(body.audience_org_unit_ids) if u not in paths]
    if missing:
        raise unknown(missing[0], "org unit", *missing[1:])
    audience = sorted({paths[u] for u in body.audience_org_unit_ids})
    lec = {
        "lecture_id": new_id(),
        "lecturer_id": body.lecturer_id,
        "org_path": lecturer["org_path"],
        "topic": body.topic.value,
        "title": body.title,
        "given_on": body.given_on,
        "audience_org_paths": audience,
        "headcount": body.headcount,
    }
    await store.insert_lecture(w.conn, lec)
    await add_event(
        w.conn,
        ev.LectureGiven(
            lecture_id=lec["lecture_id"],
            lecturer_id=body.lecturer_id,
            org_path=lecturer["org_path"],
            topic=body.topic,
            given_on=body.given_on,
            audience_org_paths=audience,
            headcount=body.headcount,
            occurred_at=w.clock.now(),
        ),
    )
    return lec


async def list_lectures(
    conn: Conn, principal: Principal, under: str | None, after: str | None, limit: int
) -> dict[str, Any]:
    """Lectures given by lecturers in a subtree."""
    return await list_in_subtree(conn, principal, under, after, limit, store.list_lectures, "lecture_id")
