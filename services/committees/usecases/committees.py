"""Parent committees: form, dissolve, members join and leave; reads (members' names are audited)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain.rules import (
    RuleBroken,
    check_active,
    check_dissolve,
    check_member_eligible,
    check_one_active_committee,
    check_term,
    committee_level,
)
from services.committees.schemas import CommitteeIn, DissolveIn, MemberIn
from services.committees.store import committees as store
from services.committees.store import directory
from services.committees.usecases.common import (
    decided,
    list_in_subtree,
    require_change,
    require_read,
    writable_unit,
)
from shared import audit
from shared.auth import ADMINS, Principal
from shared.contracts import committees as ev
from shared.db import Conn
from shared.ids import new_id
from shared.outbox import add_event, add_events
from shared.problems import conflict, found, not_found, unknown
from shared.writes import Write


async def _get(conn: Conn, committee_id: str, *, lock: bool = False) -> dict[str, Any]:
    return found(await store.get_committee(conn, committee_id, lock=lock), "committee")


async def _writable(w: Write, committee_id: str) -> dict[str, Any]:
    """The committee, locked, when the caller may change it (403) and it is at the version `If-Match` names (412)."""
    c = await _get(w.conn, committee_id, lock=True)
    require_change(w, c)
    return c


async def form(w: Write, body: CommitteeIn) -> dict[str, Any]:
    """Form the parent committee of a county, school, grade or class (one active committee per unit)."""
    unit = await writable_unit(w, body.org_unit_id, "/org_unit_id", lock=True)
    with decided():
        level = committee_level(unit["level"])
    try:
        check_one_active_committee(await store.list_active_committee_ids(w.conn, body.org_unit_id))
    except RuleBroken as exc:  # a second active committee is a conflict with the current state
        raise conflict(exc.reason) from None
    c = {
        "committee_id": new_id(),
        "org_unit_id": body.org_unit_id,
        "org_path": unit["org_path"],
        "level": level.value,
        "formed_on": body.formed_on,
    }
    await store.insert_committee(w.conn, c)
    await add_event(w.conn, ev.CommitteeFormed(**c, occurred_at=w.clock.now()))
    return {**c, "dissolved_on": None, "members": [], "version": 1}


async def list_committees(
    conn: Conn, principal: Principal, under: str | None, after: str | None, limit: int
) -> dict[str, Any]:
    """Committees in a subtree (active and dissolved)."""
    return await list_in_subtree(conn, principal, under, after, limit, store.list_committees, "committee_id")


async def get(pool: asyncpg.Pool, principal: Principal, committee_id: str) -> dict[str, Any]:
    """A committee and its active members (members' names only for admins in scope); the read is audited."""
    async with audit.reading(pool, principal, "committee") as read:
        c = await _get(read.conn, committee_id)
        require_read(principal, c["org_path"])
        c["members"] = await store.list_members(read.conn, committee_id, with_names=principal.has(*ADMINS))
        read.of(committee_id, c["org_path"], [m["guardian_id"] for m in c["members"]])
    return c


async def dissolve(w: Write, committee_id: str, body: DissolveIn) -> dict[str, Any]:
    """Dissolve a committee; its active members leave (412 when `If-Match` names another version)."""
    c = await _writable(w, committee_id)
    with decided():
        check_dissolve(c["formed_on"], c["dissolved_on"], body.dissolved_on)
    left = await store.update_committee_dissolved(w.conn, committee_id, body.dissolved_on)
    now = w.clock.now()
    path = c["org_path"]
    await add_events(
        w.conn,
        [
            *(
                ev.CommitteeMemberLeft(committee_id=committee_id, guardian_id=g, org_path=path, occurred_at=now)
                for g in left
            ),
            ev.CommitteeDissolved(
                committee_id=committee_id,
                org_unit_id=c["org_unit_id"],
                org_path=path,
                dissolved_on=body.dissolved_on,
                occurred_at=now,
            ),
        ],
    )
    return {**await _get(w.conn, committee_id), "members_left": left}


async def add_member(w: Write, committee_id: str, body: MemberIn) -> dict[str, Any]:
    """A guardian of a student inside the committee's unit joins it."""
    c = await _writable(w, committee_id)
    with decided():
        check_active(c["dissolved_on"])
    if await directory.get_guardian(w.conn, body.guardian_id) is None:
        raise unknown("/guardian_id", "guardian")
    with decided():
        check_term(body.term_start, body.term_end)
        check_member_eligible(c["org_path"], await directory.list_guardian_student_paths(w.conn, body.guardian_id))
    m = body.model_dump()
    if not await store.upsert_member(w.conn, committee_id, m):
        raise conflict("the guardian is already a member")
    await add_event(
        w.conn,
        ev.CommitteeMemberJoined(committee_id=committee_id, org_path=c["org_path"], **m, occurred_at=w.clock.now()),
    )
    return {"committee_id": committee_id, **m}


async def remove_member(w: Write, committee_id: str, guardian_id: str) -> dict[str, Any]:
    """A member leaves the committee."""
    c = await _writable(w, committee_id)
    if not await store.update_member_left(w.conn, committee_id, guardian_id):
        raise not_found("active member")
    await add_event(
        w.conn,
        ev.CommitteeMemberLeft(
            committee_id=committee_id, guardian_id=guardian_id, org_path=c["org_path"], occurred_at=w.clock.now()
        ),
    )
    return {"committee_id": committee_id, "guardian_id": guardian_id, "active": False}
