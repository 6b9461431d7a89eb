"""`python -m services.<name> migrate`: what the Kubernetes init container runs before each replica starts."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import asyncpg
import pytest

from shared import db, directory
from shared.testing.fixtures import drop_test_resources

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VISITS_MIGRATIONS = ROOT / "services" / "visits" / "migrations"


async def migrate_visits(database_url: str, schema: str) -> tuple[int, str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VISITS_")},
        "DATABASE_URL": database_url,
        "VISITS_DB_SCHEMA": schema,
        "HSS_ENV": "test",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.visits",
        "migrate",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


async def test_migrate_command_creates_the_schema_once_even_when_replicas_run_it_together(stack, unique, raw_conn):
    schema = f"t_{unique}_visits"
    try:
        # Three pods' init containers at once, on an empty database.
        results = await asyncio.gather(*(migrate_visits(stack.database_url, schema) for _ in range(3)))
        for code, out in results:
            assert code == 0, out
        expected = len(
            [*db.KIT_MIGRATIONS.glob("*.sql"), *directory.MIGRATIONS.glob("*.sql"), *VISITS_MIGRATIONS.glob("*.sql")]
        )
        assert await raw_conn.fetchval(f'SELECT count(*) FROM "{schema}".schema_migrations') == expected
        # Each command exited and left no session behind.
        assert await raw_conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", schema) == 0
    finally:
        await drop_test_resources(stack, f"t{unique}.", {schema})


async def test_a_migration_behind_a_long_query_gives_way_and_applies_after_it(stack, unique, raw_conn, tmp_path):
    schema = f"t_{unique}_kittest"
    try:
        await db.migrate(stack.database_url, schema, db.KIT_MIGRATIONS)
        (tmp_path / "001_extra.sql").write_text("ALTER TABLE outbox ADD COLUMN extra int;")
        # A long read holds the table: the migration's ALTER waits for it.
        reader = await asyncpg.connect(stack.database_url)
        reading = reader.transaction()
        await reading.start()
        await reader.execute(f'SELECT count(*) FROM "{schema}".outbox')
        migrating = asyncio.create_task(
            db.migrate(stack.database_url, schema, db.KIT_MIGRATIONS, tmp_path, lock_timeout=0.2)
        )
        try:
            await asyncio.sleep(1.0)
            # With lock_timeout the waiting ALTER gives up and retries, so the service's own queries are not queued
            # behind it (without, this SELECT would wait as long as the long read does).
            for _ in range(3):
                assert await asyncio.wait_for(raw_conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox'), 10) == 0
            assert not migrating.done()
        finally:
            await reading.rollback()
            await reader.close()
        applied = await asyncio.wait_for(migrating, 60)
        assert applied == [f"{tmp_path.parent.name}/001_extra.sql"]
        columns = await raw_conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'outbox'",
            schema,
        )
        assert "extra" in {c["column_name"] for c in columns}
    finally:
        await drop_test_resources(stack, f"t{unique}.", {schema})
