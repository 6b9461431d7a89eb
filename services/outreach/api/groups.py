"""Special-group register routes: lists by org subtree, manual entry, verification."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from services.outreach import domain
from services.outreach.api.common import Offset, page, rules, scope_path
from services.outreach.schemas import GroupCount, MembershipIn, MembershipOut, VerifyIn
from services.outreach.store import groups, referrals
from shared import idempotency, scope
from shared.auth import ADMINS, CurrentPrincipal, Principal, Role
from shared.clock import Clock
from shared.contracts.outreach import GroupMembershipRegistered, GroupMembershipVerified, GroupSource, SpecialGroup
from shared.outbox import add_events
from shared.problems import conflict, invalid, not_found
from shared.web import Pool


def router(clock: Clock) -> APIRouter:
    r = APIRouter(prefix="/api/v1/groups", tags=["special groups"])

    @r.get("/members", response_model=list[MembershipOut])
    async def list_members(
        principal: CurrentPrincipal,
        pool: Pool,
        org_path: str | None = None,
        group: SpecialGroup | None = None,
        verified: bool | None = None,
        include_ended: bool = False,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> Any:
        """Members of the special groups under an org subtree."""
        principal.require(*ADMINS)
        path = scope_path(principal, org_path)
        limit, offset = page(limit, offset)
        rows = await groups.list_(
            pool,
            org_path=path,
            group=group,
            verified=verified,
            include_ended=include_ended,
            limit=limit,
            offset=offset,
        )
        return [dict(x) for x in rows]

    @r.get("/counts", response_model=list[GroupCount])
    async def counts(principal: CurrentPrincipal, pool: Pool, org_path: str | None = None) -> Any:
        """Current members per group under an org subtree."""
        principal.require(*ADMINS)
        return [dict(x) for x in await groups.counts(pool, scope_path(principal, org_path))]

    @r.post("/members", status_code=201, response_model=MembershipOut)
    async def register(body: MembershipIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
        """Enter a student in a group by hand: administrators over the child's class, or a department partner for
        the group of a referral it received; the class path comes from the directory, never from the client."""
        if principal.has(Role.DEPARTMENT_PARTNER):
            source = GroupSource.DEPARTMENT
        elif principal.has(*ADMINS):
            source = GroupSource.SCHOOL
        else:
            raise scope.forbidden("requires an administrator or department partner role")
        now = clock.now()

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            org_path = await _class_path(conn, body.student_id)
            if body.org_path is not None and scope.normalize(body.org_path) != org_path:
                raise invalid("/org_path", "is not the student's class path")
            await _require_group_access(conn, request, principal, body.student_id, body.group, org_path)
            m = await groups.register(conn, str(uuid.uuid4()), body.student_id, body.group, source, org_path, now)
            if m is None:
                raise conflict("the student is already in this group")
            await add_events(
                conn,
                [
                    GroupMembershipRegistered(
                        membership_id=m["membership_id"],
                        student_id=m["student_id"],
                        group=body.group,
                        source=source,
                        org_path=m["org_path"],
                        occurred_at=now,
                    )
                ],
            )
            return dict(m)

        return await idempotency.write(request, principal, pool, work)

    @r.post("/members/{membership_id}/verify", response_model=MembershipOut)
    async def verify(
        membership_id: str, body: VerifyIn, request: Request, principal: CurrentPrincipal, pool: Pool
    ) -> Any:
        """Verify (or reject) a membership: administrators over the child's class, or a department partner for the
        group of a referral it received."""
        principal.require(*ADMINS, Role.DEPARTMENT_PARTNER)
        now = clock.now()

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            m = await groups.get(conn, membership_id, lock=True)
            if m is None:
                raise not_found("membership")
            await _require_group_access(
                conn, request, principal, m["student_id"], SpecialGroup(m["group"]), m["org_path"]
            )
            await groups.verify(conn, membership_id, body.verified, principal.subject, now)
            await add_events(
                conn,
                [
                    GroupMembershipVerified(
                        membership_id=membership_id,
                        student_id=m["student_id"],
                        group=SpecialGroup(m["group"]),
                        verified=body.verified,
                        org_path=m["org_path"],
                        occurred_at=now,
                    )
                ],
            )
            return dict(await groups.get(conn, membership_id))

        return await idempotency.write(request, principal, pool, work, status_code=200)

    return r


async def _class_path(conn: asyncpg.Connection, student_id: str) -> str:
    """The child's class path from the directory (422 for a child the directory does not know)."""
    path: str | None = await conn.fetchval("SELECT org_path FROM students WHERE student_id = $1", student_id)
    if path is None:
        raise invalid("/student_id", "no such student in the directory")
    return path


async def _require_group_access(
    conn: asyncpg.Connection, request: Request, principal: Principal, student_id: str, group: SpecialGroup, path: str
) -> None:
    """Administrators over the child's class; a department partner only for the groups of its own referrals."""
    if not principal.has(Role.DEPARTMENT_PARTNER):
        scope.require(principal, path)
        return
    refs = [
        ref
        for ref in await referrals.of_student_to(conn, student_id, principal.department or "")
        if scope.covers(principal, ref["org_path"])
    ]
    if group not in domain.referred_groups(rules(request), [ref["category"] for ref in refs]):
        raise scope.forbidden("a department registers and verifies only the groups of children referred to it")
