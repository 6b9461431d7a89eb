"""Import jobs as the API sees them: open (JSON in one request, or CSV files one entity at a time), start, read."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import asyncpg
import orjson

from services.committees.domain.files import header_fault
from services.committees.domain.rows import ENTITIES
from services.committees.schemas import ImportIn
from services.committees.store import imports as store
from services.committees.store import org_units
from shared import scope
from shared.auth import Principal, Role
from shared.db import Conn
from shared.edges import TextStream
from shared.ids import new_id
from shared.problems import conflict, found, invalid
from shared.writes import Write

HEADER_BYTES = 64 * 1024  # where a CSV file's header line must end
VIEW = ("import_id", "format", "status", "created_at", "started_at", "finished_at", "counts", "events", "timings")


def view(job: asyncpg.Record, files: dict[str, int] | None = None) -> dict[str, Any]:
    """An import job as answered: status, counts, row errors, events, timings (and uploaded files before start)."""
    out = {k: job[k] for k in VIEW}
    out["error_count"] = job["error_count"]
    out["errors"] = job["errors"] or []
    out["duplicate_candidates"] = job["duplicate_candidates"] or []
    if job["message"]:
        out["message"] = job["message"]
    if files is not None:
        out["files"] = files
    out["links"] = {"self": f"/api/v1/imports/{job['import_id']}"}
    return out


async def require_importer(conn: Conn, principal: Principal) -> None:
    """Bureau admins over the whole tree: an import may touch any org unit (a bureau token of one district may not)."""
    principal.require(Role.BUREAU_ADMIN)
    scope.require(principal, *await org_units.list_root_paths(conn), detail="imports need a bureau admin over the city")


async def _get(conn: Conn, import_id: str, *, lock: bool = False) -> asyncpg.Record:
    return found(await store.get_import(conn, import_id, lock=lock), "import")


async def open_json(w: Write, body: ImportIn) -> dict[str, Any]:
    """A JSON export (rows per entity) queued as one job."""
    await require_importer(w.conn, w.principal)
    present = {e: rows for e in ENTITIES if (rows := getattr(body, e)) is not None}
    if not present:
        raise invalid("/", "at least one of org_units, staff, families, guardians, students is required")
    import_id = new_id()
    await store.insert_import(w.conn, import_id, "json", "queued", w.principal.subject)
    for entity, rows in present.items():
        await store.replace_file(w.conn, import_id, entity, _parts_of(orjson.dumps(rows)))
    return view(await _get(w.conn, import_id))


async def open_csv(w: Write) -> dict[str, Any]:
    """A CSV import awaiting its files."""
    await require_importer(w.conn, w.principal)
    import_id = new_id()
    await store.insert_import(w.conn, import_id, "csv", "awaiting_files", w.principal.subject)
    return view(await _get(w.conn, import_id), {})


async def _parts_of(content: bytes) -> AsyncIterator[bytes]:
    """A file held whole (a JSON body's entity) in the parts it is stored in."""
    for at in range(0, len(content) or 1, store.PART_BYTES):
        yield content[at : at + store.PART_BYTES]


async def _parts(body: AsyncIterator[bytes], text: TextStream) -> AsyncGenerator[bytes, None]:
    """An uploaded body as it arrives, in the parts it is stored in, checked as UTF-8 text on the way (the
    problems of `shared.edges`' text check, and 422 for text that is not UTF-8)."""
    part = bytearray()
    try:
        async for chunk in body:
            text.feed(chunk)
            text.refuse()
            part += chunk
            while len(part) >= store.PART_BYTES:
                yield bytes(part[: store.PART_BYTES])
                del part[: store.PART_BYTES]
        text.feed(b"", final=True)
    except UnicodeDecodeError:
        raise invalid("body", "the file must be UTF-8 encoded") from None
    yield bytes(part)


async def upload(
    pool: asyncpg.Pool, principal: Principal, import_id: str, entity: str, body: AsyncIterator[bytes]
) -> dict[str, Any]:
    """One entity's CSV file, UTF-8 (replaces an earlier upload), before the import starts, stored as its bytes
    arrive (a file is never held whole); a file whose header lacks the entity's required columns is refused at once
    (a wrong file, not rows to reject one by one later)."""
    parts = _parts(body, TextStream())
    first = await anext(parts)
    fault = header_fault(entity, first[:HEADER_BYTES].decode("utf-8", "ignore"))
    if fault:
        await parts.aclose()
        raise invalid("body", fault)

    async def stored() -> AsyncIterator[bytes]:
        yield first
        async for part in parts:
            yield part

    async with pool.acquire() as conn, conn.transaction():
        job = await _get(conn, import_id, lock=True)
        if job["status"] != "awaiting_files":
            raise conflict(f"the import is {job['status']}; files can only be added before it starts")
        await store.replace_file(conn, import_id, entity, stored())
        return view(job, await store.list_file_sizes(conn, import_id))


async def start(w: Write, import_id: str) -> dict[str, Any]:
    """Queue an uploaded CSV import."""
    await require_importer(w.conn, w.principal)
    job = await _get(w.conn, import_id, lock=True)
    if job["status"] != "awaiting_files":
        raise conflict(f"the import is already {job['status']}")
    files = await store.list_file_sizes(w.conn, import_id)
    if not files:
        raise conflict("upload at least one file before starting")
    await store.update_status(w.conn, import_id, "queued")
    return view(await _get(w.conn, import_id), files)


async def get(conn: Conn, principal: Principal, import_id: str) -> dict[str, Any]:
    """An import's status, counts per entity (received/created/updated/unchanged/rejected) and row errors."""
    await require_importer(conn, principal)
    job = await _get(conn, import_id)
    return view(job, await store.list_file_sizes(conn, import_id) if job["status"] == "awaiting_files" else None)
