"""HTTP routes: summary, drill-down, series, campaigns, exports and the dashboard (thin)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from services.reporting.store import reads
from services.reporting.usecases import exports, views
from services.reporting.usecases.cache import AnswerCache
from shared import scope
from shared.auth import CurrentPrincipal, Principal, Role
from shared.problems import invalid
from shared.web import Pool

READERS = (Role.BUREAU_ADMIN, Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, Role.AUDITOR)
STATIC = Path(__file__).parents[1] / "static"

router = APIRouter(prefix="/api/v1", tags=["reporting"])
pages = APIRouter(include_in_schema=False)

OrgPath = Annotated[str | None, Query(pattern=r"^(/[\w.-]+)+$", max_length=200, description="default: your unit")]
CampaignId = Annotated[str, Query(max_length=100, description="campaign id; empty = all campaigns")]


def _cache(request: Request) -> AnswerCache:
    cache: AnswerCache | None = getattr(request.app.state, "answers", None)
    if cache is None:
        cache = request.app.state.answers = AnswerCache(request.app.state.settings.summary_cache_seconds)
    return cache


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _scope(principal: Principal, org_path: str | None) -> str:
    """The node to report on: the caller's unit by default, never outside the caller's subtree."""
    principal.require(*READERS)
    return scope.narrow(principal, org_path)


@router.get("/summary")
async def summary(
    request: Request, principal: CurrentPrincipal, pool: Pool, org_path: OrgPath = None, campaign_id: CampaignId = ""
) -> Any:
    """Indicators of one org unit (any level) for a campaign, rolled up from its classes."""
    node = _scope(principal, org_path)

    async def compute() -> bytes:
        return orjson.dumps((await views.summaries(pool, [node], campaign_id))[0])

    return _json(await _cache(request).get(("summary", node, campaign_id), compute))


@router.get("/children")
async def children(
    request: Request, principal: CurrentPrincipal, pool: Pool, org_path: OrgPath = None, campaign_id: CampaignId = ""
) -> Any:
    """Drill-down: the unit's figures and each child unit's figures."""
    node = _scope(principal, org_path)

    async def compute() -> bytes:
        return orjson.dumps(await views.children(pool, node, campaign_id))

    return _json(await _cache(request).get(("children", node, campaign_id), compute))


@router.get("/series")
async def series(
    principal: CurrentPrincipal, pool: Pool, org_path: OrgPath = None, campaign_id: CampaignId = ""
) -> Any:
    """Per-day visits, findings, cases opened and closed."""
    return await views.day_series(pool, _scope(principal, org_path), campaign_id)


@router.get("/reporting/campaigns")
async def campaigns(principal: CurrentPrincipal, pool: Pool) -> Any:
    """Campaigns seen on the visits topics."""
    principal.require(*READERS)
    return {"campaigns": await reads.campaigns(pool)}


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> Any:
    """The caller's unit and roles (the dashboard starts there)."""
    return {"org_path": principal.org_path, "roles": sorted(principal.roles)}


@router.get("/exports/{table}")
async def export(
    table: str,
    principal: CurrentPrincipal,
    pool: Pool,
    org_path: OrgPath = None,
    campaign_id: CampaignId = "",
    format: Literal["csv", "xlsx"] = "csv",
) -> Response:
    """Any table of the API as CSV or Excel."""
    node = _scope(principal, org_path)
    if table not in exports.TABLES:
        raise invalid("/table", f"unknown table; one of {', '.join(exports.TABLES)}")
    header, rows = await exports.table(pool, table, node, campaign_id)
    stem = f"{table}{node.replace('/', '_')}{'_' + campaign_id if campaign_id else ''}"
    if format == "xlsx":
        return Response(
            exports.to_xlsx(table, header, rows),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": exports.content_disposition(f"{stem}.xlsx")},
        )
    return Response(
        exports.to_csv(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": exports.content_disposition(f"{stem}.csv")},
    )


@pages.get("/dashboard")
async def dashboard() -> FileResponse:
    """The dashboard page (static; it calls the API with the caller's token)."""
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


@pages.get("/dashboard/{name}")
async def dashboard_asset(name: Literal["app.js", "app.css"]) -> FileResponse:
    """The dashboard's script and styles."""
    media = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(STATIC / name, media_type=f"{media}; charset=utf-8")
