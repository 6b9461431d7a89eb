"""Routes of campaigns: create, list, read, launch, close, progress."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from services.visits.schemas import CampaignDetailOut, CampaignIn, CampaignOut, LaunchOut, ProgressBy, ProgressOut
from services.visits.settings import VisitsSettings
from services.visits.usecases import campaigns as campaign_cases
from services.visits.usecases import queries
from shared import openapi, pages, versions
from shared.auth import CurrentPrincipal
from shared.pages import Page
from shared.scope import OrgPathQuery
from shared.web import Pool, Today
from shared.writes import Writes

router = APIRouter(prefix="/api/v1", tags=["campaigns"])
NOT_DRAFT = openapi.errors({409: "the campaign is not a draft"})
NOT_LAUNCHED = openapi.errors({409: "the campaign is not launched"})


def _settings(request: Request) -> VisitsSettings:
    settings: VisitsSettings = request.app.state.settings
    return settings


@router.post("/campaigns", status_code=201, response_model=CampaignOut)
async def create_campaign(body: CampaignIn, w: Writes) -> Any:
    """Create a draft campaign for an org subtree (admins of that subtree)."""
    return await w.run(campaign_cases.create_campaign, body, _settings(w.request).default_target_per_teacher)


@router.get("/campaigns", response_model=Page[CampaignOut])
async def list_campaigns(
    principal: CurrentPrincipal, pool: Pool, limit: pages.Limit = 100, cursor: pages.Cursor = None
) -> Any:
    """Campaigns covering or inside the caller's subtree, newest first."""
    return await queries.list_campaigns(pool, principal, limit, cursor)


@router.get("/campaigns/{campaign_id}", response_model=CampaignDetailOut)
async def get_campaign(campaign_id: str, principal: CurrentPrincipal, pool: Pool, tag: versions.Tag) -> Any:
    """One campaign with its checklist."""
    return tag.of(await queries.campaign(pool, principal, campaign_id))


@router.post("/campaigns/{campaign_id}/launch", response_model=LaunchOut, responses=NOT_DRAFT)
async def launch_campaign(campaign_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """draft → launched: generates the assignments (class teachers first) and publishes them."""
    return await w.run(campaign_cases.launch_campaign, campaign_id, if_match=if_match)


@router.post("/campaigns/{campaign_id}/close", response_model=CampaignOut, responses=NOT_LAUNCHED)
async def close_campaign(campaign_id: str, w: Writes, if_match: versions.IfMatch) -> Any:
    """launched → closed."""
    return await w.run(campaign_cases.close_campaign, campaign_id, if_match=if_match)


@router.get("/campaigns/{campaign_id}/progress", response_model=ProgressOut)
async def campaign_progress(
    campaign_id: str,
    principal: CurrentPrincipal,
    pool: Pool,
    today: Today,
    by: ProgressBy = ProgressBy.SCHOOL,
    org_path: OrgPathQuery = None,
) -> Any:
    """Assigned, completed, missed and outstanding visits (and completed by mode) per teacher, class, grade, school
    or district, each with the visits expected by today and whether it is behind schedule. Administrators and
    auditors see their subtree; a teacher sees only their own assignments."""
    return await queries.progress(pool, principal, campaign_id, by, org_path, today)
