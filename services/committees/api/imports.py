"""Bulk import routes: a JSON city in one request, or CSV files uploaded one entity at a time."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.committees.domain.rows import REQUIRED_COLUMNS
from services.committees.domain.vocabularies import Entity
from services.committees.schemas import ImportIn, ImportJobOut
from services.committees.usecases import imports
from services.committees.usecases.import_jobs import runner_for
from shared import openapi
from shared.auth import CurrentPrincipal
from shared.edges import checks_own_text
from shared.problems import Problem
from shared.web import Pool
from shared.writes import Writer, Writes

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])
MAX_FILE_BYTES = 200 * 1024 * 1024  # one entity's CSV
MAX_JSON_BYTES = 256 * 1024 * 1024  # the whole city (200,000 students) is about 112 MiB


def _located(response: JSONResponse) -> JSONResponse:
    response.headers["Location"] = orjson.loads(response.body)["links"]["self"]
    return response


def _accepted(w: Writer, response: JSONResponse) -> JSONResponse:
    """Start the job after its request committed (not for a replayed Idempotency-Key)."""
    if response.status_code == 202 and response.headers.get("idempotent-replayed") != "true":
        runner_for(w.request.app.state.settings, w.clock).start(orjson.loads(response.body)["import_id"])
    return _located(response)


@router.post("", status_code=202, max_body_size=MAX_JSON_BYTES, response_model=ImportJobOut)
async def import_json(body: ImportIn, w: Writes) -> JSONResponse:
    """Import the JSON export (rows per entity); 202 with a job to poll. Bad rows are reported, good ones kept."""
    return _accepted(w, await w.run(imports.open_json, body))


@router.post("/csv", status_code=201, response_model=ImportJobOut)
async def create_csv_import(w: Writes) -> JSONResponse:
    """Open a CSV import: upload `<entity>.csv` files with PUT, then POST `start`."""
    return _located(await w.run(imports.open_csv))


UPLOAD_TEXT = "one entity's rows: UTF-8 (BOM allowed), header row first; the header names at least the entity's " + (
    "required columns (" + "; ".join(f"{e}: {', '.join(cols)}" for e, cols in REQUIRED_COLUMNS.items()) + ")"
)


@router.put(
    "/{import_id}/files/{entity}",
    max_body_size=MAX_FILE_BYTES,
    response_model=ImportJobOut,
    responses=openapi.errors(409, 415),
    openapi_extra=openapi.upload("text/csv", UPLOAD_TEXT),
)
@checks_own_text
async def upload_csv_file(
    import_id: str, entity: Entity, request: Request, principal: CurrentPrincipal, pool: Pool
) -> dict[str, Any]:
    """Upload one entity's CSV (Content-Type text/csv, UTF-8, header row first); replaces an earlier upload."""
    await imports.require_importer(pool, principal)
    if not request.headers.get("content-type", "").startswith("text/csv"):
        raise Problem(415, "Unsupported media type", "upload the file as text/csv")
    return await imports.upload(pool, principal, import_id, entity, request.stream())


@router.post("/{import_id}/start", status_code=202, response_model=ImportJobOut, responses=openapi.errors(409))
async def start_csv_import(import_id: str, w: Writes) -> JSONResponse:
    """Queue an uploaded CSV import; 202 with the job to poll."""
    return _accepted(w, await w.run(imports.start, import_id))


@router.get("/{import_id}", response_model=ImportJobOut, response_model_exclude_unset=True)
async def get_import(import_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """An import's status, counts per entity (received/created/updated/unchanged/rejected) and row errors."""
    return await imports.get(pool, principal, import_id)
