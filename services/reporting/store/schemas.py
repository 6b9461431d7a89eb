"""SQL of a rebuild: the rebuilt schema's replay offsets, its secondary indexes and triggers, and the schemas
themselves (create, drop, swap). Schema names are the service's own settings, quoted; never input from a request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from shared.db import Conn


async def upsert_rebuild_offsets(conn: asyncpg.Connection, positions: dict[tuple[str, int], int]) -> None:
    """Where the replay continues, per topic partition (kept in the rebuilt schema, in the batch's transaction)."""
    await conn.executemany(
        "INSERT INTO rebuild_offsets (topic, partition, next_offset) VALUES ($1, $2, $3)"
        " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
        [(t, p, o) for (t, p), o in positions.items()],
    )


async def insert_schema(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(f'CREATE SCHEMA "{schema}"')


async def delete_schema(conn: asyncpg.Connection, schema: str, *, if_exists: bool = False) -> None:
    await conn.execute(f'DROP SCHEMA {"IF EXISTS " if if_exists else ""}"{schema}" CASCADE')


async def get_schema_exists(conn: asyncpg.Connection, schema: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema))


async def update_schema_name(conn: asyncpg.Connection, schema: str, new_name: str) -> None:
    await conn.execute(f'ALTER SCHEMA "{schema}" RENAME TO "{new_name}"')


async def update_inbox_paused(conn: asyncpg.Connection, schema: str) -> None:
    """Pause the live consumers until the transaction ends: they write their inbox row first in every transaction,
    so this waits for the running ones and holds new ones back."""
    await conn.execute(f'LOCK TABLE "{schema}".inbox IN SHARE ROW EXCLUSIVE MODE')


async def list_secondary_indexes(conn: Conn, schema: str) -> list[tuple[str, str]]:
    """(name, definition) of the schema's indexes that no constraint owns."""
    rows = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname NOT IN"
        " (SELECT conname FROM pg_constraint WHERE connamespace = $1::text::regnamespace)",
        schema,
    )
    return [(r["indexname"], r["indexdef"]) for r in rows]


async def delete_index(conn: Conn, name: str) -> None:
    await conn.execute(f'DROP INDEX "{name}"')


async def insert_index(conn: Conn, definition: str) -> None:
    """Create an index from its definition as `pg_indexes` gave it."""
    await conn.execute(definition)


async def list_triggers(conn: Conn, schema: str) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the triggers on the schema's tables (the fact logs' statement triggers)."""
    rows = await conn.fetch(
        "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) AS definition FROM pg_trigger t"
        " JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::text::regnamespace AND NOT t.tgisinternal",
        schema,
    )
    return [(r["relname"], r["tgname"], r["definition"]) for r in rows]


async def delete_trigger(conn: Conn, schema: str, table: str, name: str) -> None:
    await conn.execute(f'DROP TRIGGER "{name}" ON "{schema}"."{table}"')


async def insert_trigger(conn: Conn, definition: str) -> None:
    """Create a trigger from its definition as `pg_get_triggerdef` gave it."""
    await conn.execute(definition)


@asynccontextmanager
async def bulk_load(conn: Conn, schema: str) -> AsyncIterator[None]:
    """A fresh schema loaded in bulk and then refreshed in full: its secondary indexes are built once at the end
    instead of maintained row by row, and its fact-log triggers are off meanwhile (a full refresh recomputes from
    the facts, so nothing needs logging; a statement trigger with transition tables copies every row it sees even
    when it logs nothing). Both are back when the block ends, before anything is folded by deltas."""
    indexes = await list_secondary_indexes(conn, schema)
    triggers = await list_triggers(conn, schema)
    for name, _ in indexes:
        await delete_index(conn, name)
    for table, name, _ in triggers:
        await delete_trigger(conn, schema, table, name)
    yield
    for _, definition in indexes:
        await insert_index(conn, definition)
    for *_, definition in triggers:
        await insert_trigger(conn, definition)
