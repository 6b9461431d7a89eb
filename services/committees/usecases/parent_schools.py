"""Parent schools: establish, schedule sessions, enrol guardians, record attendance and that a session was held."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain.online import join_link
from services.committees.domain.rules import attendance_rate, check_parent_school_unit
from services.committees.schemas import AttendanceIn, EnrolIn, ParentSchoolIn, SessionIn
from services.committees.store import directory
from services.committees.store import parent_schools as store
from services.committees.usecases.common import (
    READERS,
    decided,
    list_in_subtree,
    require_read,
    require_write,
    writable_unit,
)
from shared import scope, versions
from shared.auth import Principal
from shared.clock import Clock
from shared.contracts import committees as ev
from shared.db import Conn
from shared.ids import new_id
from shared.outbox import add_event, add_events
from shared.problems import Problem, conflict, found, not_found
from shared.writes import Write


async def _get(conn: Conn, parent_school_id: str) -> dict[str, Any]:
    return found(await store.get_parent_school(conn, parent_school_id), "parent school")


async def _session(conn: Conn, parent_school_id: str, session_id: str, *, lock: bool = False) -> dict[str, Any]:
    return found(await store.get_session(conn, parent_school_id, session_id, lock=lock), "session")


async def _writable_session(
    w: Write, parent_school_id: str, session_id: str, *, lock: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The parent school (write scope checked: 403) and its session (locked with `lock`), at the version `If-Match`
    names (412)."""
    p = await _get(w.conn, parent_school_id)
    require_write(w.principal, p["org_path"])
    s = await _session(w.conn, parent_school_id, session_id, lock=lock)
    w.check(s["version"])
    return p, s


def _session_view(s: dict[str, Any]) -> dict[str, Any]:
    return {**s, "attendance_rate": attendance_rate(s["attended"], s["expected"])}


async def _require_eligible(conn: Conn, p: dict[str, Any], guardian_ids: list[str], pointer: str) -> None:
    """Every guardian must have a student inside the parent school's unit."""
    ok = await store.list_guardians_with_student_in(conn, guardian_ids, p["org_path"])
    bad = [i for i, g in enumerate(guardian_ids) if g not in ok]
    if bad:
        raise Problem(
            422,
            "Rule broken",
            "guardians must have a student inside the parent school's org unit",
            errors=[{"pointer": pointer.format(i), "detail": "no student inside the unit"} for i in bad[:50]],
        )


async def establish(w: Write, body: ParentSchoolIn) -> dict[str, Any]:
    """Establish a county-level, school-level or online parent school."""
    unit = await writable_unit(w, body.org_unit_id, "/org_unit_id")
    with decided():
        check_parent_school_unit(body.kind, unit["level"])
    p = {"parent_school_id": new_id(), "org_path": unit["org_path"], **body.model_dump(mode="json")}
    await store.insert_parent_school(w.conn, p)
    p["version"] = versions.FIRST
    await add_event(
        w.conn,
        ev.ParentSchoolEstablished(
            parent_school_id=p["parent_school_id"], org_path=p["org_path"], kind=body.kind, occurred_at=w.clock.now()
        ),
    )
    return p


async def list_parent_schools(
    conn: Conn, principal: Principal, under: str | None, after: str | None, limit: int
) -> dict[str, Any]:
    """Parent schools in a subtree."""
    return await list_in_subtree(conn, principal, under, after, limit, store.list_parent_schools, "parent_school_id")


async def get(conn: Conn, principal: Principal, parent_school_id: str) -> dict[str, Any]:
    """A parent school and its sessions."""
    p = await _get(conn, parent_school_id)
    require_read(principal, p["org_path"])
    p["sessions"] = await store.list_sessions(conn, parent_school_id)
    return p


async def schedule_session(w: Write, parent_school_id: str, body: SessionIn, join_base: str) -> dict[str, Any]:
    """Schedule a session (topic, date, mode, speaker; an online or mixed one gets its join link)."""
    p = await _get(w.conn, parent_school_id)
    require_write(w.principal, p["org_path"])
    session_id = new_id()
    with decided():
        join_url = join_link(body.mode, body.join_url, join_base, session_id)
    s = {"session_id": session_id, "parent_school_id": parent_school_id, **body.model_dump(), "join_url": join_url}
    await store.insert_session(w.conn, s)
    await add_event(
        w.conn,
        ev.SessionScheduled(
            parent_school_id=parent_school_id,
            session_id=s["session_id"],
            org_path=p["org_path"],
            topic=body.topic,
            held_on=body.held_on,
            mode=body.mode,
            occurred_at=w.clock.now(),
        ),
    )
    return {**s, "status": "scheduled", "version": versions.FIRST}


async def get_session(conn: Conn, principal: Principal, parent_school_id: str, session_id: str) -> dict[str, Any]:
    """A session with enrolment, attendance and its attendance rate."""
    p = await _get(conn, parent_school_id)
    require_read(principal, p["org_path"])
    return _session_view(await _session(conn, parent_school_id, session_id))


async def enrol(w: Write, parent_school_id: str, session_id: str, body: EnrolIn) -> dict[str, Any]:
    """Enrol guardians in a session (the expected attendance)."""
    p, _ = await _writable_session(w, parent_school_id, session_id)
    await _require_eligible(w.conn, p, body.guardian_ids, "/guardian_ids/{}")
    added = await store.insert_enrolments(w.conn, session_id, sorted(set(body.guardian_ids)))
    return {"session_id": session_id, "added": added}


async def mark_held(w: Write, parent_school_id: str, session_id: str) -> dict[str, Any]:
    """Record that a scheduled session took place (412 when `If-Match` names another version of the session)."""
    p, s = await _writable_session(w, parent_school_id, session_id, lock=True)
    if not await store.update_session_held(w.conn, session_id):
        raise conflict("the session was already recorded as held")
    await add_event(
        w.conn,
        ev.SessionHeld(
            parent_school_id=parent_school_id,
            session_id=session_id,
            org_path=p["org_path"],
            held_on=s["held_on"],
            enrolled=s["enrolled"],
            occurred_at=w.clock.now(),
        ),
    )
    return _session_view({**s, "status": "held", "version": s["version"] + 1})


async def record_attendance(w: Write, parent_school_id: str, session_id: str, body: AttendanceIn) -> dict[str, Any]:
    """Record attendance per guardian (the latest record counts; unchanged records publish nothing)."""
    p, _ = await _writable_session(w, parent_school_id, session_id)
    attended = {r.guardian_id: r.attended for r in body.records}
    return await save_attendance(w.conn, w.clock, p, session_id, [r.guardian_id for r in body.records], attended)


async def save_attendance(
    conn: asyncpg.Connection,
    clock: Clock,
    p: dict[str, Any],
    session_id: str,
    listed: list[str],
    attended: dict[str, bool],
    minutes: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Attendance of a session of parent school `p` (in person, or online with the `minutes` connected), one record
    per guardian in `attended`: every `listed` guardian must be expected there; an unchanged record publishes
    nothing. The session as it is now, with how many records changed."""
    await _require_eligible(conn, p, listed, "/records/{}/guardian_id")
    guardians = sorted(attended)
    online = minutes is not None
    changed = await store.upsert_attendance(
        conn,
        session_id,
        [(g, attended[g]) for g in guardians],
        online=online,
        minutes=[minutes[g] for g in guardians] if minutes is not None else None,
    )
    now, parent_school_id = clock.now(), p["parent_school_id"]
    await add_events(
        conn,
        [
            ev.AttendanceRecorded(
                parent_school_id=parent_school_id,
                session_id=session_id,
                guardian_id=g,
                org_path=p["org_path"],
                attended=attended[g],
                occurred_at=now,
                online=online,
            )
            for g in sorted(changed)
        ],
    )
    return {**_session_view(await _session(conn, parent_school_id, session_id)), "changed": len(changed)}


async def guardian_attendance(conn: Conn, principal: Principal, guardian_id: str) -> dict[str, Any]:
    """A guardian's attendance rate over the held sessions they were expected at."""
    principal.require(*READERS)
    paths = await directory.list_guardian_student_paths(conn, guardian_id)
    if not paths and await directory.get_guardian(conn, guardian_id) is None:
        raise not_found("guardian")
    if not any(scope.covers(principal, p) for p in paths):
        raise scope.forbidden()
    n = await store.get_guardian_attendance(conn, guardian_id)
    return {"guardian_id": guardian_id, **n, "attendance_rate": attendance_rate(n["attended"], n["expected"])}
