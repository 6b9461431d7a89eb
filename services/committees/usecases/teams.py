"""Instructor teams: form, members join (staff by id, experts and parents by name) and leave; audited reads."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.committees.domain.rules import check_team_member, check_team_staff, check_team_unit
from services.committees.schemas import TeamIn, TeamMemberIn
from services.committees.store import directory
from services.committees.store import teams as store
from services.committees.usecases.common import (
    audit_write,
    decided,
    list_in_subtree,
    require_read,
    require_write,
    writable_unit,
)
from shared import audit, versions
from shared.auth import Principal
from shared.contracts import committees as ev
from shared.db import Conn
from shared.ids import new_id
from shared.outbox import add_event
from shared.problems import conflict, found, not_found, unknown
from shared.writes import Write

CONFLICTS = {"team_one_lead": "the team already has a lead"}


async def _get(conn: Conn, team_id: str) -> dict[str, Any]:
    return found(await store.get_team(conn, team_id), "instructor team")


async def form(w: Write, body: TeamIn) -> dict[str, Any]:
    """Form an instructor team for a school or county."""
    unit = await writable_unit(w, body.org_unit_id, "/org_unit_id")
    with decided():
        check_team_unit(unit["level"])
    t = {"team_id": new_id(), "org_unit_id": body.org_unit_id, "org_path": unit["org_path"], "name": body.name}
    await store.insert_team(w.conn, t)
    t["version"] = versions.FIRST
    await add_event(
        w.conn, ev.InstructorTeamFormed(team_id=t["team_id"], org_path=t["org_path"], occurred_at=w.clock.now())
    )
    return t


async def list_teams(
    conn: Conn, principal: Principal, under: str | None, after: str | None, limit: int
) -> dict[str, Any]:
    """Instructor teams in a subtree."""
    return await list_in_subtree(conn, principal, under, after, limit, store.list_teams, "team_id")


async def get(pool: asyncpg.Pool, principal: Principal, team_id: str) -> dict[str, Any]:
    """A team with its active members (names of members who are not staff); the read is audited."""
    async with audit.reading(pool, principal, "instructor_team") as read:
        t = await _get(read.conn, team_id)
        require_read(principal, t["org_path"])
        read.of(team_id, t["org_path"], [m["staff_id"] or m["member_id"] for m in t["members"]])
    return t


async def audit_member(
    conn: asyncpg.Connection, principal: Principal, member: dict[str, Any], org_path: str | None = None
) -> None:
    """The answer to an added member carries a name: audited, when first given and when replayed."""
    path = org_path or (await _get(conn, member["team_id"]))["org_path"]
    await audit_write(
        conn, principal, "instructor_team", member["team_id"], path, member["staff_id"] or member["member_id"]
    )


async def add_member(w: Write, team_id: str, body: TeamMemberIn) -> dict[str, Any]:
    """Add a member: school staff by staff_id (inside the team's unit), experts and parents by name."""
    t = await _get(w.conn, team_id)
    require_write(w.principal, t["org_path"])
    with decided():
        check_team_member(body.role, body.staff_id, body.name)
    if body.staff_id:
        s = await directory.get_staff(w.conn, body.staff_id)
        if s is None:
            raise unknown("/staff_id", "staff member")
        with decided():
            check_team_staff(s["org_path"] if s and s["active"] else None, t["org_path"])
    m = {"member_id": new_id(), "team_id": team_id, **body.model_dump(mode="json")}
    broken = await store.insert_team_member(w.conn, m)
    if broken:
        raise conflict(CONFLICTS.get(broken, "the staff member is already in the team"))
    await add_event(
        w.conn,
        ev.InstructorTeamMemberAdded(
            team_id=team_id,
            member_id=m["member_id"],
            staff_id=body.staff_id,
            org_path=t["org_path"],
            role=body.role,
            is_lead=body.is_lead,
            occurred_at=w.clock.now(),
        ),
    )
    await audit_member(w.conn, w.principal, m, t["org_path"])
    return {**m, "version": versions.FIRST}


async def remove_member(w: Write, team_id: str, member_id: str) -> dict[str, Any]:
    """Remove a member from a team (412 when `If-Match` names another version of the membership)."""
    t = await _get(w.conn, team_id)
    require_write(w.principal, t["org_path"])
    version = await store.get_member_version(w.conn, team_id, member_id)
    if version is None:
        raise not_found("active team member")
    w.check(version)
    await store.update_team_member_removed(w.conn, team_id, member_id)
    await add_event(
        w.conn,
        ev.InstructorTeamMemberRemoved(
            team_id=team_id, member_id=member_id, org_path=t["org_path"], occurred_at=w.clock.now()
        ),
    )
    return {"team_id": team_id, "member_id": member_id, "active": False, "version": version + 1}
