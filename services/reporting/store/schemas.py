"""SQL of a rebuild: the rebuilt schema's replay offsets, its secondary indexes, and the schemas themselves (create,
drop, swap). Schema names are the service's own settings, quoted; never input from a request."""

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


async def delete_indexes(conn: Conn, names: list[str]) -> None:
    """Drop the named indexes in one statement (one transaction: ~30 commits and round trips cost more than the
    drops themselves, and a rebuild replaying a small city spent a tenth of its time on them)."""
    if names:
        await conn.execute("DROP INDEX " + ", ".join(f'"{name}"' for name in names))


async def insert_indexes(conn: Conn, definitions: list[str]) -> None:
    """Create indexes from their definitions as `pg_indexes` gave them, in one round trip and one transaction."""
    if definitions:
        await conn.execute(";\n".join(definitions))


@asynccontextmanager
async def bulk_load(conn: Conn, schema: str) -> AsyncIterator[None]:
    """A fresh schema loaded in bulk and then refreshed in full: its secondary indexes are built once at the end
    instead of maintained row by row. (Its fact-log triggers stay: the loader sets `reporting.untracked`, see
    store/facts.upsert_facts; dropping and creating the 33 triggers cost more than it saved, migrations/015.)"""
    indexes = await list_secondary_indexes(conn, schema)
    await delete_indexes(conn, [name for name, _ in indexes])
    yield
    await insert_indexes(conn, [definition for _, definition in indexes])
