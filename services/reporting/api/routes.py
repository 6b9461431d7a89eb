"""HTTP routes: summary, drill-down, series, campaigns, exports and the dashboard (thin)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response

from services.reporting import schemas
from services.reporting.store import reads
from services.reporting.usecases import exports, views
from services.reporting.usecases.cache import AnswerCache
from shared import openapi, scope
from shared import pages as paging
from shared.auth import CurrentPrincipal, Role
from shared.contracts.common import Category, OrgLevel
from shared.web import Pool, Today

READERS = (Role.BUREAU_ADMIN, Role.DISTRICT_ADMIN, Role.SCHOOL_ADMIN, Role.AUDITOR)
STATIC = FilePath(__file__).parents[1] / "static"

router = APIRouter(prefix="/api/v1", tags=["reporting"])
pages = APIRouter(include_in_schema=False)

OrgPath = Annotated[str | None, Query(pattern=r"^(/[\w.-]+)+$", max_length=200, description="default: your unit")]
CampaignId = Annotated[str, Query(max_length=100, description="campaign id; empty = all campaigns")]
Table = Annotated[schemas.ExportTable, Path(description="which table")]


def _cache(request: Request) -> AnswerCache:
    cache: AnswerCache | None = getattr(request.app.state, "answers", None)
    if cache is None:
        cache = request.app.state.answers = AnswerCache(request.app.state.settings.summary_cache_seconds)
    return cache


async def _cached(request: Request, key: tuple[str, ...], make: Callable[[], Awaitable[Any]]) -> Response:
    """The JSON answer of `make()` for `key`, computed at most once per cache period (see AnswerCache)."""

    async def compute() -> bytes:
        return orjson.dumps(await make())

    return Response(await _cache(request).get(key, compute), media_type="application/json")


def _node(principal: CurrentPrincipal, org_path: OrgPath = None) -> str:
    """The node to report on: the caller's unit by default, never outside the caller's subtree."""
    principal.require(*READERS)
    return scope.narrow(principal, org_path)


Node = Annotated[str, Depends(_node)]


@router.get("/summary", response_model=schemas.Summary)
async def summary(request: Request, pool: Pool, node: Node, campaign_id: CampaignId = "") -> Any:
    """Indicators of one org unit (any level) for a campaign, rolled up from its classes."""
    return await _cached(request, ("summary", node, campaign_id), partial(views.summary, pool, node, campaign_id))


@router.get("/children", response_model=schemas.Children)
async def children(request: Request, pool: Pool, node: Node, campaign_id: CampaignId = "") -> Any:
    """Drill-down: the unit's figures and each child unit's figures."""
    return await _cached(request, ("children", node, campaign_id), partial(views.children, pool, node, campaign_id))


@router.get("/series", response_model=schemas.Series)
async def series(pool: Pool, node: Node, campaign_id: CampaignId = "") -> Any:
    """Per-day visits, findings, cases opened and closed."""
    return await views.day_series(pool, node, campaign_id)


@router.get("/reporting/campaigns", response_model=paging.Page[schemas.CampaignOut])
async def list_campaigns(
    principal: CurrentPrincipal, pool: Pool, limit: paging.Limit = 100, cursor: paging.Cursor = None
) -> Any:
    """Campaigns seen on the visits topics, newest start first."""
    principal.require(*READERS)
    rows = await reads.list_campaigns(pool, paging.after(cursor, date, str), limit + 1)
    return paging.page(rows, limit, reads.campaign_key)


@router.get(
    "/reporting/teachers-behind",
    response_model=schemas.TeachersBehind,
    responses=openapi.errors({404: "reporting has not seen this campaign's launch"}),
)
async def teachers_behind(
    pool: Pool,
    today: Today,
    campaign_id: Annotated[str, Query(min_length=1, max_length=100, description="campaign id")],
    node: Node,
    limit: Annotated[int, Query(ge=1, le=1000, description="at most this many teachers")] = 100,
) -> Any:
    """The teachers of a campaign in an org unit (a school admin: their school) who have completed fewer visits than
    the campaign's plan expects by today, furthest behind first (404 for a campaign reporting has not seen)."""
    return await views.teachers_behind(pool, node, campaign_id, today, limit)


@router.get("/whoami")
async def whoami(principal: CurrentPrincipal) -> schemas.Me:
    """The caller's unit and roles (the dashboard starts there)."""
    return schemas.Me(org_path=principal.org_path, roles=sorted(principal.roles))


@router.get(
    "/exports/{table}",
    response_class=Response,
    responses=openapi.file_response("text/csv", openapi.XLSX, description="the table as CSV (UTF-8) or Excel"),
)
async def export(
    table: Table,
    pool: Pool,
    node: Node,
    campaign_id: CampaignId = "",
    format: schemas.ExportFormat = schemas.ExportFormat.CSV,
) -> Response:
    """Any table of the API as CSV or Excel."""
    header, rows = await exports.table(pool, table, node, campaign_id)
    stem = f"{table}{node.replace('/', '_')}{'_' + campaign_id if campaign_id else ''}"
    if format == "xlsx":
        return Response(
            exports.to_xlsx(table, header, rows),
            media_type=openapi.XLSX,
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


@pages.get("/dashboard/vocabulary.json")
async def dashboard_vocabulary() -> dict[str, dict[str, tuple[str, str]]]:
    """The zh/en labels the dashboard shows for finding categories and org levels: the contracts' own."""
    return {"cat": {c.value: (c.zh, c.en) for c in Category}, "level": {v.value: (v.zh, v.en) for v in OrgLevel}}


@pages.get("/dashboard/{name}")
async def dashboard_asset(name: Literal["app.js", "app.css"]) -> FileResponse:
    """The dashboard's script and styles."""
    media = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(STATIC / name, media_type=f"{media}; charset=utf-8")
