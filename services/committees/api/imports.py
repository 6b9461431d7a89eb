"""Bulk import routes: a JSON city in one request, or CSV files uploaded one entity at a time."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.committees.domain.rows import ENTITIES
from services.committees.importer import runner_for
from services.committees.schemas import ImportIn
from services.committees.store import imports as store
from shared import idempotency, scope
from shared.auth import CurrentPrincipal, Principal, Role
from shared.problems import Problem, conflict, invalid, not_found
from shared.web import Pool

router = APIRouter(prefix="/api/v1/imports", tags=["imports"])
MAX_FILE_BYTES = 200 * 1024 * 1024  # one entity's CSV
MAX_JSON_BYTES = 256 * 1024 * 1024  # the whole city (200,000 students) is about 112 MiB


def _view(job: asyncpg.Record, files: dict[str, int] | None = None) -> dict[str, Any]:
    out = {
        k: job[k]
        for k in (
            "import_id",
            "format",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "counts",
            "events",
            "timings",
        )
    }
    out["error_count"] = job["error_count"]
    out["errors"] = job["errors"] or []
    if job["message"]:
        out["message"] = job["message"]
    if files is not None:
        out["files"] = files
    out["links"] = {"self": f"/api/v1/imports/{job['import_id']}"}
    return out


def _accepted(request: Request, response: JSONResponse) -> JSONResponse:
    """Start the job after its request committed (not for a replayed Idempotency-Key)."""
    if response.status_code == 202 and response.headers.get("idempotent-replayed") != "true":
        runner_for(request.app.state.settings).start(orjson.loads(response.body)["import_id"])
    response.headers["Location"] = orjson.loads(response.body)["links"]["self"]
    return response


async def _require_importer(pool: asyncpg.Pool, principal: Principal) -> None:
    """Bureau admins over the whole tree: an import may touch any org unit (a bureau token of one district may not)."""
    principal.require(Role.BUREAU_ADMIN)
    roots = await pool.fetch("SELECT org_path FROM org_units WHERE parent_id IS NULL")
    scope.require(principal, *(r["org_path"] for r in roots), detail="imports need a bureau admin over the city")


@router.post("", status_code=202, max_body_size=MAX_JSON_BYTES)
async def import_json(body: ImportIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> JSONResponse:
    """Import the JSON export (rows per entity); 202 with a job to poll. Bad rows are reported, good ones kept."""
    await _require_importer(pool, principal)
    present = {e: rows for e in ENTITIES if (rows := getattr(body, e)) is not None}
    if not present:
        raise invalid("/", "at least one of org_units, staff, families, guardians, students is required")
    import_id = str(uuid.uuid4())

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        await store.create(conn, import_id, "json", "queued", principal.subject)
        for entity, rows in present.items():
            await store.put_file(conn, import_id, entity, orjson.dumps(rows).decode())
        job = await store.get(conn, import_id)
        assert job is not None
        return _view(job)

    return _accepted(request, await idempotency.write(request, principal, pool, work, status_code=202))


@router.post("/csv", status_code=201)
async def create_csv_import(request: Request, principal: CurrentPrincipal, pool: Pool) -> JSONResponse:
    """Open a CSV import: upload `<entity>.csv` files with PUT, then POST `start`."""
    await _require_importer(pool, principal)
    import_id = str(uuid.uuid4())

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        await store.create(conn, import_id, "csv", "awaiting_files", principal.subject)
        job = await store.get(conn, import_id)
        assert job is not None
        return _view(job, {})

    response = await idempotency.write(request, principal, pool, work, status_code=201)
    response.headers["Location"] = f"/api/v1/imports/{orjson.loads(response.body)['import_id']}"
    return response


@router.put("/{import_id}/files/{entity}", max_body_size=MAX_FILE_BYTES)
async def upload_csv(
    import_id: str, entity: str, request: Request, principal: CurrentPrincipal, pool: Pool
) -> dict[str, Any]:
    """Upload one entity's CSV (Content-Type text/csv, UTF-8, header row first); replaces an earlier upload."""
    await _require_importer(pool, principal)
    if entity not in ENTITIES:
        raise invalid("/path/entity", f"must be one of: {', '.join(ENTITIES)}")
    if not request.headers.get("content-type", "").startswith("text/csv"):
        raise Problem(415, "Unsupported media type", "upload the file as text/csv")
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("body", "the file must be UTF-8 encoded") from None
    async with pool.acquire() as conn, conn.transaction():
        job = await conn.fetchrow("SELECT * FROM imports WHERE import_id = $1 FOR UPDATE", import_id)
        if job is None:
            raise not_found("import")
        if job["status"] != "awaiting_files":
            raise conflict(f"the import is {job['status']}; files can only be added before it starts")
        await store.put_file(conn, import_id, entity, text)
        return _view(job, await store.file_sizes(conn, import_id))


@router.post("/{import_id}/start", status_code=202)
async def start_csv_import(import_id: str, request: Request, principal: CurrentPrincipal, pool: Pool) -> JSONResponse:
    """Queue an uploaded CSV import; 202 with the job to poll."""
    await _require_importer(pool, principal)

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        job = await conn.fetchrow("SELECT * FROM imports WHERE import_id = $1 FOR UPDATE", import_id)
        if job is None:
            raise not_found("import")
        if job["status"] != "awaiting_files":
            raise conflict(f"the import is already {job['status']}")
        files = await store.file_sizes(conn, import_id)
        if not files:
            raise conflict("upload at least one file before starting")
        await store.set_status(conn, import_id, "queued")
        job = await store.get(conn, import_id)
        assert job is not None
        return _view(job, files)

    return _accepted(request, await idempotency.write(request, principal, pool, work, status_code=202))


@router.get("/{import_id}")
async def get_import(import_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """An import's status, counts per entity (received/created/updated/unchanged/rejected) and row errors."""
    await _require_importer(pool, principal)
    job = await store.get(pool, import_id)
    if job is None:
        raise not_found("import")
    return _view(job, await store.file_sizes(pool, import_id) if job["status"] == "awaiting_files" else None)
