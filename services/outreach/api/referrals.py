"""Referral routes: departments see and answer only their own referrals; detail reads are audited."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Query, Request

from services.outreach import domain
from services.outreach.api.common import Offset, page, rules, scope_path
from services.outreach.domain import ReferralState
from services.outreach.schemas import ReferralDetail, ReferralNoteIn, ReferralOut
from services.outreach.store import cases, referrals
from shared import audit, idempotency, scope
from shared.auth import ADMINS, CurrentPrincipal, Principal, Role
from shared.clock import Clock
from shared.contracts.outreach import (
    ReferralAccepted,
    ReferralAcknowledged,
    ReferralDeclined,
    ReferralResolved,
)
from shared.outbox import add_events
from shared.problems import conflict, not_found
from shared.web import Pool

EVENT_FOR = {
    ReferralState.ACKNOWLEDGED: ReferralAcknowledged,
    ReferralState.ACCEPTED: ReferralAccepted,
    ReferralState.DECLINED: ReferralDeclined,
    ReferralState.RESOLVED: ReferralResolved,
}
ACTIONS = {
    "acknowledge": ReferralState.ACKNOWLEDGED,
    "accept": ReferralState.ACCEPTED,
    "decline": ReferralState.DECLINED,
    "resolve": ReferralState.RESOLVED,
}


def _may_see(principal: Principal, ref: Any) -> bool:
    """The addressed department's partners, or administrators over the child's school."""
    if principal.has(Role.DEPARTMENT_PARTNER):
        return principal.department == ref["department"] and scope.covers(principal, ref["org_path"])
    return principal.has(*ADMINS) and scope.covers(principal, ref["org_path"])


def _require_partner_of(principal: Principal, ref: Any) -> None:
    if ref is None:
        raise not_found("referral")
    if not (principal.has(Role.DEPARTMENT_PARTNER) and _may_see(principal, ref)):
        # Same answer as for a missing referral: other departments' referrals are not disclosed.
        raise not_found("referral")


def router(clock: Clock) -> APIRouter:
    r = APIRouter(prefix="/api/v1/referrals", tags=["referrals"])

    @r.get("", response_model=list[ReferralOut])
    async def list_referrals(
        principal: CurrentPrincipal,
        pool: Pool,
        state: ReferralState | None = None,
        org_path: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Offset = 0,
    ) -> Any:
        """A department partner's own referrals; administrators see those in their subtree."""
        limit, offset = page(limit, offset)
        if principal.has(Role.DEPARTMENT_PARTNER):
            if not principal.department:
                raise scope.forbidden("the department partner token carries no department")
            # A department office sees its own department's referrals within its jurisdiction (token org path).
            path = scope_path(principal, org_path)
            rows = await referrals.list_(
                pool, department=principal.department, org_path=path, state=state, limit=limit, offset=offset
            )
        elif principal.has(*ADMINS):
            path = scope_path(principal, org_path)
            rows = await referrals.list_(pool, department=None, org_path=path, state=state, limit=limit, offset=offset)
        else:
            raise scope.forbidden("requires a department partner or administrator role")
        return [dict(x) for x in rows]

    @r.get("/{referral_id}", response_model=ReferralDetail)
    async def get_referral(referral_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
        """What the department needs: the referral's category and urgency, the child's placement, the school contacts
        and the register group the referral is about, never the case's other categories or groups (audited read)."""
        async with pool.acquire() as conn, conn.transaction():
            ref = await referrals.get(conn, referral_id)
            if ref is None or not _may_see(principal, ref):
                raise not_found("referral")
            c = await cases.get_case(conn, ref["case_id"])
            family = await conn.fetchrow(
                "SELECT f.living_arrangement FROM students s JOIN families f USING (family_id) WHERE s.student_id = $1",
                ref["student_id"],
            )
            referred = domain.referred_groups(rules(request), [ref["category"]])
            grps = await conn.fetch(
                "SELECT grp FROM group_memberships WHERE student_id = $1 AND ended_at IS NULL AND grp = ANY($2::text[])"
                " ORDER BY grp",
                ref["student_id"],
                sorted(referred),
            )
            await audit.record(
                conn,
                principal,
                resource_type="referral",
                resource_id=referral_id,
                org_path=ref["class_path"],
                subject_ids=[ref["student_id"]],
            )
            return {
                **dict(ref),
                "child": {
                    "student_id": ref["student_id"],
                    "class_path": ref["class_path"],
                    "school_path": domain.school_path(ref["class_path"]),
                    "living_arrangement": family["living_arrangement"] if family else None,
                    "groups": [g["grp"] for g in grps],
                },
                "case": {
                    **{k: c[k] for k in ("case_id", "state", "opened_at", "contact_due", "first_contacted_at")},
                    "carers": [dict(x) for x in await cases.carers_of(conn, c["case_id"])],
                },
            }

    def action(name: str, target: ReferralState) -> None:
        @r.post(f"/{{referral_id}}/{name}", response_model=ReferralOut, name=f"{name}_referral")
        async def act(
            referral_id: str,
            request: Request,
            principal: CurrentPrincipal,
            pool: Pool,
            body: ReferralNoteIn | None = None,
        ) -> Any:
            now = clock.now()
            note = body.note if body else None

            async def work(conn: asyncpg.Connection) -> dict[str, Any]:
                ref = await referrals.get(conn, referral_id, lock=True)
                _require_partner_of(principal, ref)
                current = ReferralState(ref["state"])
                if target not in domain.REFERRAL_TRANSITIONS[current]:
                    raise conflict(f"a referral cannot go from {current} to {target}")
                await referrals.transition(
                    conn,
                    referral_id,
                    target,
                    {"at": now.isoformat(), "state": target, "by": principal.subject, "note": note},
                    now,
                )
                model = EVENT_FOR[target]
                await add_events(
                    conn,
                    [
                        model(
                            referral_id=referral_id,
                            case_id=ref["case_id"],
                            department=ref["department"],
                            category=ref["category"],
                            urgency=ref["urgency"],
                            org_path=ref["org_path"],
                            occurred_at=now,
                        )
                    ],
                )
                return dict(await referrals.get(conn, referral_id))

            return await idempotency.write(request, principal, pool, work, status_code=200)

        act.__doc__ = f"The department partner marks its referral {target} (with an optional note)."

    for name, target in ACTIONS.items():
        action(name, target)
    return r
