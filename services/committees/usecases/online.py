"""Online parent schools: attendance reported by the online platform, completion per guardian."""

from __future__ import annotations

from typing import Any

from services.committees.domain.online import attended_online, check_online_attendance, completed
from services.committees.schemas import OnlineAttendanceIn
from services.committees.store import parent_schools as store
from services.committees.usecases.common import READERS, decided, page, require_read
from services.committees.usecases.parent_schools import _get, _writable_session, save_attendance
from shared.auth import Principal
from shared.db import Conn
from shared.writes import Write


async def record_online_attendance(
    w: Write, parent_school_id: str, session_id: str, body: OnlineAttendanceIn, min_minutes: int
) -> dict[str, Any]:
    """The online platform's report of who was connected how long: attended when at least `min_minutes`; the latest
    report per guardian counts, an unchanged one publishes nothing."""
    p, s = await _writable_session(w, parent_school_id, session_id)
    with decided():
        check_online_attendance(s["mode"])
    minutes = {r.guardian_id: r.minutes for r in body.records}
    attended = {g: attended_online(m, min_minutes) for g, m in minutes.items()}
    return await save_attendance(
        w.conn, w.clock, p, session_id, [r.guardian_id for r in body.records], attended, minutes
    )


async def completion(
    conn: Conn, principal: Principal, parent_school_id: str, after: str | None, limit: int, share: float
) -> dict[str, Any]:
    """Each guardian expected at the parent school's sessions: held sessions attended, online and in person, and
    whether they completed it."""
    principal.require(*READERS)
    p = await _get(conn, parent_school_id)
    require_read(principal, p["org_path"])
    rows = await store.list_completion(conn, parent_school_id, after, limit + 1)
    items = [{**r, "completed": completed(r["attended"], r["sessions_held"], share)} for r in rows]
    return page(items, limit, "guardian_id")
