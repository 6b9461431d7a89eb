"""Referral routes: departments see and answer only their own referrals; detail reads are audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.outreach.api.common import Rules, paged_list
from services.outreach.domain import ReferralState
from services.outreach.schemas import ReferralDetail, ReferralNoteIn, ReferralOut, ReferralQuery
from services.outreach.usecases import referrals
from shared import openapi, versions
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

ACTIONS = {
    "acknowledge": ReferralState.ACKNOWLEDGED,
    "accept": ReferralState.ACCEPTED,
    "decline": ReferralState.DECLINED,
    "resolve": ReferralState.RESOLVED,
}

router = APIRouter(prefix="/api/v1/referrals", tags=["referrals"])


paged_list(router, "", ReferralOut, referrals.list_referrals, ReferralQuery)


@router.get("/{referral_id}", response_model=ReferralDetail)
async def get_referral(
    referral_id: str, principal: CurrentPrincipal, pool: Pool, rules: Rules, tag: versions.Tag
) -> Any:
    """What the department needs: the referral's category and urgency, the child's placement, the school contacts
    and the register group the referral is about, never the case's other categories or groups (audited read)."""
    return tag.of(await referrals.get_referral_detail(pool, principal, rules, referral_id))


def _answer_route(name: str, target: ReferralState) -> None:
    @router.post(
        f"/{{referral_id}}/{name}",
        response_model=ReferralOut,
        name=f"{name}_referral",
        responses=openapi.errors({409: "the referral cannot make this step from its state"}),
    )
    async def act(
        referral_id: str, w: Writes, rules: Rules, if_match: versions.IfMatch, body: ReferralNoteIn | None = None
    ) -> Any:
        note = body.note if body else None
        return await w.run(referrals.answer, rules, referral_id, target, note, if_match=if_match)

    act.__doc__ = f"The department partner marks its referral {target} (with an optional note)."


for _name, _target in ACTIONS.items():
    _answer_route(_name, _target)
