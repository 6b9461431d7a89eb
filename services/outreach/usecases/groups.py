"""Special-group register use cases: lists, entry by hand, verification, and entry from the directory's flag."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.outreach import domain
from services.outreach.schemas import MemberQuery, MembershipIn
from services.outreach.settings import Rules
from services.outreach.store import directory, groups, referrals
from shared import directory as directory_tables
from shared import pages, scope
from shared.auth import ADMINS, Principal, Role
from shared.contracts.outreach import (
    GroupEndReason,
    GroupMembershipEnded,
    GroupMembershipMoved,
    GroupMembershipRegistered,
    GroupMembershipVerified,
    GroupSource,
    SpecialGroup,
)
from shared.directory import Changes
from shared.ids import new_id
from shared.outbox import add_bulk, add_events
from shared.problems import conflict, found, invalid, unknown
from shared.writes import Write


def registered_fields(m: Any, now: datetime) -> dict[str, Any]:
    """The fields of the event of a new (or revived) membership row."""
    return {
        "membership_id": m["membership_id"],
        "student_id": m["student_id"],
        "group": SpecialGroup(m["group"]),
        "source": GroupSource(m["source"]),
        "org_path": m["org_path"],
        "occurred_at": now,
    }


def registered(m: Any, now: datetime) -> GroupMembershipRegistered:
    """The event of a new (or revived) membership row."""
    return GroupMembershipRegistered(**registered_fields(m, now))


async def list_members(
    pool: asyncpg.Pool, principal: Principal, query: MemberQuery, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of the members of the special groups under an org subtree (administrators), newest first."""
    principal.require(*ADMINS)
    after = pages.after(cursor, datetime, str)
    path = scope.narrow(principal, query.org_path)
    filters = query.model_dump(exclude={"org_path"})
    rows = await groups.list_memberships(pool, org_path=path, after=after, limit=limit + 1, **filters)
    return pages.page([dict(x) for x in rows], limit, lambda m: (m["registered_at"], m["membership_id"]))


async def counts(pool: asyncpg.Pool, principal: Principal, org_path: str | None) -> dict[str, Any]:
    """Current members per group under an org subtree (administrators)."""
    principal.require(*ADMINS)
    subtree = scope.narrow(principal, org_path)
    return {"org_path": subtree, "items": [dict(x) for x in await groups.list_group_counts(pool, subtree)]}


async def _class_path(conn: asyncpg.Connection, student_id: str) -> str:
    """The child's class path from the directory (404 naming `/student_id` for a child the directory does not know)."""
    path = await directory.get_student_path(conn, student_id)
    if path is None:
        raise unknown("/student_id", "student in the directory")
    return path


async def _require_group_access(
    conn: asyncpg.Connection, rules: Rules, principal: Principal, student_id: str, group: SpecialGroup, path: str
) -> None:
    """Administrators over the child's class; a department partner only for the groups of its own referrals."""
    if not principal.has(Role.DEPARTMENT_PARTNER):
        scope.require(principal, path)
        return
    refs = [
        ref
        for ref in await referrals.list_student_referrals(conn, student_id, principal.department or "")
        if scope.covers(principal, ref["org_path"])
    ]
    if group not in domain.referred_groups(rules, [ref["category"] for ref in refs]):
        raise scope.forbidden("a department registers and verifies only the groups of children referred to it")


def entry_source(principal: Principal) -> GroupSource:
    """Who enters a child by hand: a department partner or an administrator."""
    if principal.has(Role.DEPARTMENT_PARTNER):
        return GroupSource.DEPARTMENT
    if principal.has(*ADMINS):
        return GroupSource.SCHOOL
    raise scope.forbidden("requires an administrator or department partner role")


async def register(w: Write, rules: Rules, body: MembershipIn) -> dict[str, Any]:
    """Enter a student in a group by hand: administrators over the child's class, or a department partner for the
    group of a referral it received; the class path comes from the directory, never from the client."""
    now = w.clock.now()
    source = entry_source(w.principal)
    org_path = await _class_path(w.conn, body.student_id)
    if body.org_path is not None and scope.normalize(body.org_path) != org_path:
        raise invalid("/org_path", "is not the student's class path")
    await _require_group_access(w.conn, rules, w.principal, body.student_id, body.group, org_path)
    m = await groups.insert_membership(w.conn, new_id(), body.student_id, body.group, source, org_path, now)
    if m is None:
        raise conflict("the student is already in this group")
    await add_events(w.conn, [registered(m, now)])
    return dict(m)


async def verify(w: Write, rules: Rules, membership_id: str, verified: bool) -> dict[str, Any]:
    """Verify (or reject) a membership: administrators over the child's class, or a department partner for the group
    of a referral it received (412 when `If-Match` names another version)."""
    now = w.clock.now()
    w.principal.require(*ADMINS, Role.DEPARTMENT_PARTNER)
    m = found(await groups.get_membership(w.conn, membership_id, lock=True), "membership")
    group = SpecialGroup(m["group"])
    await _require_group_access(w.conn, rules, w.principal, m["student_id"], group, m["org_path"])
    w.check(m["version"])
    await groups.update_membership_verified(w.conn, membership_id, verified, w.principal.subject, now)
    event = GroupMembershipVerified(
        membership_id=membership_id,
        student_id=m["student_id"],
        group=group,
        verified=verified,
        org_path=m["org_path"],
        occurred_at=now,
    )
    await add_events(w.conn, [event])
    return dict(await groups.get_membership(w.conn, membership_id))


def _membership(m: Any) -> dict[str, Any]:
    return {
        "membership_id": m["membership_id"],
        "student_id": m["student_id"],
        "group": SpecialGroup(m["grp"]),
        "org_path": m["org_path"],
    }


async def follow_directory(conn: asyncpg.Connection, changes: Changes, now: datetime) -> None:
    """What directory changes mean for the register: a family whose parents work away puts its children in the
    left-behind group (placed once their class is known), parents back home end what the flag alone held, and a
    child's memberships follow the child's moves."""
    students = changes.of(directory_tables.STUDENTS, active=True)
    families = changes.of(directory_tables.FAMILIES, active=True)
    # Written set-based through the kit (`add_bulk`): a directory poll may flag thousands of children.
    said: list[tuple[type[BaseModel], dict[str, Any]]] = []
    if students:
        moved = await groups.update_memberships_placement(conn, [(r["student_id"], r["org_path"]) for r in students])
        said += [(GroupMembershipMoved, {**_membership(m), "occurred_at": now}) for m in moved]
    home = [sid for f in families if not f["parents_work_away"] for sid in f["student_ids"]]
    if home:
        ended = await groups.update_flagged_memberships_ended(conn, home, SpecialGroup.LEFT_BEHIND, now)
        said += [
            (GroupMembershipEnded, {**_membership(m), "reason": GroupEndReason.FLAG_ENDED, "occurred_at": now})
            for m in ended
        ]
    if said:  # reporting and departments count members where they are, and only while they are members
        await add_bulk(conn, said)
    flagged = await directory.list_left_behind_children(
        conn,
        [(r["student_id"], r["family_id"], r["org_path"]) for r in students],
        list({sid for f in families if f["parents_work_away"] for sid in f["student_ids"]}),
    )
    if not flagged:
        return
    rows = [(new_id(), sid, path) for sid, path in flagged]
    created = await groups.insert_flag_memberships(
        conn, rows, SpecialGroup.LEFT_BEHIND, GroupSource.DIRECTORY_FLAG, now
    )
    await add_bulk(conn, [(GroupMembershipRegistered, registered_fields(m, now)) for m in created])
