"""The refresh picks the incremental or the full path by the number of distinct dirty leaves, and recomputes
figures a database crash emptied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.reporting.settings import ReportingSettings
from services.reporting.store.refresh import FULL_AT, get_figures_lost, get_many_dirty_leaves, update_figures
from shared import db

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "reporting" / "migrations"


@pytest.fixture
async def schema(make_settings: Any) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A migrated reporting schema without the service (no refresher racing the test) and a connection to it."""
    settings = make_settings(ReportingSettings)
    pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=1)
    try:
        await db.migrate(settings.database_url, settings.db_schema, db.KIT_MIGRATIONS, MIGRATIONS)
        async with pool.acquire() as conn:
            yield settings.db_schema, conn
    finally:
        await pool.close()


async def test_many_marks_of_few_leaves_stay_incremental_and_many_leaves_go_full(schema):
    _, conn = schema
    # Every transaction appends its own marks: a busy class is marked thousands of times.
    await conn.execute(
        "INSERT INTO dirty_leaves SELECT '/c/d/s/g/k' || (i % 10) FROM generate_series(1, $1) i", 2 * FULL_AT
    )
    assert not await get_many_dirty_leaves(conn)
    await conn.execute("INSERT INTO dirty_leaves SELECT '/c/d/s/g/x' || i FROM generate_series(1, $1) i", FULL_AT - 10)
    assert await get_many_dirty_leaves(conn)


async def test_figures_lost_in_a_database_crash_are_recomputed_in_full(schema):
    name, conn = schema
    # The derived figures skip the WAL: PostgreSQL empties them after a crash, the facts stay.
    persistence = await conn.fetch(
        "SELECT relname, relpersistence::text FROM pg_class WHERE relnamespace = $1::regnamespace"
        " AND relname IN ('leaf_metrics', 'node_metrics', 'node_extra', 'entity_corrections', 'visits')",
        name,
    )
    assert {r["relname"]: r["relpersistence"] for r in persistence} == {
        "leaf_metrics": "u",
        "node_metrics": "u",
        "node_extra": "u",
        "entity_corrections": "u",
        "visits": "p",
    }
    await conn.execute("INSERT INTO org_units VALUES ('620402', '/620400/620402', 'district', '白银区', now())")
    assert await get_figures_lost(conn)  # facts, no figures yet
    assert await update_figures(conn, name)
    assert await conn.fetchval("SELECT count(*) FROM node_metrics WHERE node = '/620400'") > 0
    assert not await get_figures_lost(conn)
    await conn.execute("TRUNCATE leaf_metrics, node_metrics, node_extra, entity_corrections")  # as after a crash
    assert await get_figures_lost(conn)
    assert await update_figures(conn, name)
    assert await conn.fetchval("SELECT count(*) FROM node_metrics WHERE node = '/620400'") > 0
