"""The refresh picks the incremental or the full path by the number of distinct dirty leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.reporting.settings import ReportingSettings
from services.reporting.store.refresh import FULL_AT, needs_full
from shared import db

pytestmark = pytest.mark.integration
MIGRATIONS = Path(__file__).resolve().parents[3] / "services" / "reporting" / "migrations"


async def test_many_marks_of_few_leaves_stay_incremental_and_many_leaves_go_full(make_settings):
    settings = make_settings(ReportingSettings)
    pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=1)
    try:
        await db.migrate(pool, settings.db_schema, db.KIT_MIGRATIONS, MIGRATIONS)
        async with pool.acquire() as conn:
            # Every transaction appends its own marks: a busy class is marked thousands of times.
            await conn.execute(
                "INSERT INTO dirty_leaves SELECT '/c/d/s/g/k' || (i % 10) FROM generate_series(1, $1) i", 2 * FULL_AT
            )
            assert not await needs_full(conn)
            await conn.execute(
                "INSERT INTO dirty_leaves SELECT '/c/d/s/g/x' || i FROM generate_series(1, $1) i", FULL_AT - 10
            )
            assert await needs_full(conn)
    finally:
        await pool.close()
