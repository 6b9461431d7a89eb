"""SQL of import jobs and of the directory lookups that row validation needs."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, BinaryIO

import asyncpg

from services.committees.domain.rows import Unit
from shared.db import lock_key, xact_lock


async def insert_import(conn: asyncpg.Connection, import_id: str, fmt: str, status: str, created_by: str) -> None:
    await conn.execute(
        "INSERT INTO imports (import_id, format, status, created_by) VALUES ($1, $2, $3, $4)",
        import_id,
        fmt,
        status,
        created_by,
    )


PART_BYTES = 1 << 20  # an uploaded file is stored and read back a part of this size at a time


async def replace_file(conn: asyncpg.Connection, import_id: str, entity: str, parts: AsyncIterable[bytes]) -> None:
    """One entity's file (replacing an earlier upload), stored a part (of up to `PART_BYTES`) at a time as `parts`
    yields them."""
    await conn.execute("DELETE FROM import_file_parts WHERE import_id = $1 AND entity = $2", import_id, entity)
    n = 0
    async for content in parts:
        await conn.execute(
            "INSERT INTO import_file_parts (import_id, entity, part, content) VALUES ($1, $2, $3, $4)",
            import_id,
            entity,
            n,
            content,
        )
        n += 1


async def get_import(
    conn: asyncpg.Connection | asyncpg.Pool, import_id: str, *, lock: bool = False
) -> asyncpg.Record | None:
    """An import job; `lock` holds its row until the transaction ends."""
    lock_sql = " FOR UPDATE" if lock else ""
    return await conn.fetchrow(f"SELECT * FROM imports WHERE import_id = $1{lock_sql}", import_id)


async def list_file_sizes(conn: asyncpg.Connection | asyncpg.Pool, import_id: str) -> dict[str, int]:
    """The bytes of each entity's uploaded file."""
    rows = await conn.fetch(
        "SELECT entity, sum(octet_length(content))::bigint AS n FROM import_file_parts WHERE import_id = $1 "
        "GROUP BY entity",
        import_id,
    )
    return {r["entity"]: r["n"] for r in rows}


async def copy_file(conn: asyncpg.Connection, import_id: str, entity: str, out: BinaryIO) -> None:
    """Write one entity's uploaded file to `out`, a part at a time (in the caller's transaction: a cursor)."""
    query = "SELECT content FROM import_file_parts WHERE import_id = $1 AND entity = $2 ORDER BY part"
    async for r in conn.cursor(query, import_id, entity, prefetch=1):
        out.write(r["content"])


async def update_status(conn: asyncpg.Connection | asyncpg.Pool, import_id: str, status: str, **extra: Any) -> None:
    sets = ["status = $2"] + [f"{k} = ${i + 3}" for i, k in enumerate(extra)]
    await conn.execute(f"UPDATE imports SET {', '.join(sets)} WHERE import_id = $1", import_id, status, *extra.values())


async def update_import_session(conn: asyncpg.Connection, schema: str) -> None:
    """One import at a time (concurrent imports of overlapping rows would race on the same keys), with memory
    for set-based joins, aggregates and sorts over ~200k rows (the family facts, ~300 bytes each, spilled ~60 MB
    to disk twice with 64 MB) to stay in memory, and no JIT (the upserts' row
    estimates look costly enough to compile, which took 1.7-3 s a statement under load and saves less); until the
    transaction ends."""
    await xact_lock(conn, f"import:{schema}")
    await conn.execute("SET LOCAL work_mem = '256MB'; SET LOCAL jit = off")


async def update_finished(conn: asyncpg.Connection, import_id: str) -> None:
    """The job finished: when, and its files are no longer needed."""
    await conn.execute("UPDATE imports SET finished_at = now() WHERE import_id = $1", import_id)
    await conn.execute("DELETE FROM import_file_parts WHERE import_id = $1", import_id)


async def update_claimed(conn: asyncpg.Connection, schema: str, import_id: str) -> bool:
    """Take the job's lock for this session and mark it running; False when another process runs it or it is
    not runnable. The lock lives as long as the session: a job marked running whose lock is free was left
    behind by a process that died, and is taken over at once."""
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(f"import-job:{schema}:{import_id}")):
        return False
    return bool(
        await conn.fetchval(
            "UPDATE imports SET status = 'running', started_at = now() WHERE import_id = $1 "
            "AND status IN ('queued', 'running') RETURNING true",
            import_id,
        )
    )


async def list_runnable(pool: asyncpg.Pool) -> list[str]:
    """Jobs queued or running, oldest first (`claim` tells whether a running one still has a live process)."""
    rows = await pool.fetch("SELECT import_id FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at")
    return [r["import_id"] for r in rows]


async def list_units(conn: asyncpg.Connection, ids: list[str] | None = None) -> dict[str, Unit]:
    """Org units (all, or those with the given ids) as validation needs them."""
    if ids is None:
        rows = await conn.fetch("SELECT org_unit_id, level, org_path, parent_id FROM org_units")
    else:
        rows = await conn.fetch(
            "SELECT org_unit_id, level, org_path, parent_id FROM org_units WHERE org_unit_id = ANY($1::text[])", ids
        )
    return {r["org_unit_id"]: Unit(r["level"], r["org_path"], r["parent_id"]) for r in rows}


async def list_national_ids(conn: asyncpg.Connection) -> dict[str, str]:
    """Every national ID in the directory and the student number holding it."""
    rows = await conn.fetch("SELECT national_id, student_no FROM students WHERE national_id IS NOT NULL")
    return {r["national_id"]: r["student_no"] for r in rows}


async def list_family_nos(conn: asyncpg.Connection, nos: list[str] | None = None) -> set[str]:
    """Family numbers already in the directory (all, or those among `nos`)."""
    if nos is None:
        rows = await conn.fetch("SELECT family_no FROM families")
    else:
        rows = await conn.fetch("SELECT family_no FROM families WHERE family_no = ANY($1::text[])", nos)
    return {r["family_no"] for r in rows}
