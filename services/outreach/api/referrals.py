"""Referral routes: departments see and answer only their own referrals; detail reads are audited."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.outreach.api.common import Rules, note_step, paged_list
from services.outreach.domain import ReferralState
from services.outreach.schemas import ReferralDetail, ReferralNoteIn, ReferralOut, ReferralQuery
from services.outreach.usecases import referrals
from shared import versions
from shared.auth import CurrentPrincipal
from shared.web import Pool

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


for _name, _target in ACTIONS.items():
    note_step(
        router,
        f"/{{referral_id}}/{_name}",
        "referral_id",
        referrals.answer,
        _target,
        ReferralNoteIn,
        ReferralOut,
        "the referral cannot make this step from its state",
        name=f"{_name}_referral",
        doc=f"The department partner marks its referral {_target} (with an optional note).",
    )
