"""The kit's audit log on the real database: append-only, purged only past retention, scoped by subtree."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from shared import audit, db
from shared.auth import Principal, Role
from shared.testing.fixtures import drop_test_resources, wait_for
from shared.web import ServiceSpec, start_runtime, stop_runtime
from tests.integration.kitapp import KitSettings, spec

pytestmark = pytest.mark.integration

READER = Principal(subject="sa-1", roles=frozenset({Role.SCHOOL_ADMIN}), org_path="/c/d_1")


@pytest.fixture
async def pool(stack, unique):
    schema = f"t_{unique}_audit"
    await db.migrate(stack.database_url, schema, db.KIT_MIGRATIONS)
    p = await db.create_pool(stack.database_url, schema)
    try:
        yield p
    finally:
        await p.close()
        await drop_test_resources(stack, f"t{unique}.", {schema})


async def _read(pool: asyncpg.Pool, org_path: str, resource_id: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(
            conn, READER, resource_type="student", resource_id=resource_id, org_path=org_path, subject_ids=[resource_id]
        )


async def test_rows_cannot_be_changed_or_deleted(pool):
    await _read(pool, "/c/d_1/s1", "stu-1")
    for statement in (
        "UPDATE audit_reads SET subject = 'someone-else'",
        "DELETE FROM audit_reads",
        "TRUNCATE audit_reads",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pool.execute(statement)
    assert await pool.fetchval("SELECT subject FROM audit_reads") == "sa-1"


async def test_purge_is_the_only_delete_and_keeps_rows_inside_retention(pool):
    for days, sid in [(400, "old-1"), (370, "old-2"), (10, "recent")]:
        await pool.execute(
            "INSERT INTO audit_reads (at, subject, roles, reader_path, org_path, action, resource_type, subject_ids)"
            " VALUES (now() - make_interval(days => $1), 'x', '{auditor}', '/c', '/c/s', 'read', 'student', $2)",
            days,
            [sid],
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await pool.execute("DELETE FROM audit_reads WHERE at < now() - interval '365 days'")
    assert await audit.purge(pool, timedelta(days=365)) == 2
    assert [r["subject_ids"] for r in await pool.fetch("SELECT subject_ids FROM audit_reads")] == [["recent"]]
    # A retention of less than a day is refused rather than wiping recent history.
    with pytest.raises(asyncpg.RaiseError, match="at least one day"):
        await audit.purge(pool, timedelta(hours=1))
    # The purge's permission does not outlive it in the session.
    async with pool.acquire() as conn, conn.transaction():
        await audit.purge(conn, timedelta(days=365))
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_reads")


async def test_record_refuses_to_run_outside_the_reads_transaction(pool):
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await audit.record(conn, READER, resource_type="student", org_path="/c/d_1/s1")
    assert await pool.fetchval("SELECT count(*) FROM audit_reads") == 0


async def test_reading_writes_its_row_in_the_reads_transaction_and_only_for_a_read_that_answered(pool):
    # A read that named what it read: one row, in the same transaction as the read (its txid).
    async with audit.reading(pool, READER, "student") as read:
        txid = await read.conn.fetchval("SELECT txid_current()")
        read.of("stu-1", "/c/d_1/s1", ["stu-1", "stu-2"], {"stu-2": "/c/d_1/s2"})
    row = await pool.fetchrow("SELECT resource_type, resource_id, subject_ids, subject_paths, xmin FROM audit_reads")
    assert (row["resource_type"], row["resource_id"], row["subject_ids"]) == ("student", "stu-1", ["stu-1", "stu-2"])
    assert row["subject_paths"] == ["/c/d_1/s1", "/c/d_1/s2"]
    assert int(row["xmin"]) == txid % 2**32
    # A read refused half-way (403/404 raised in the block) leaves no row, even when it had named the resource.
    with pytest.raises(LookupError):
        async with audit.reading(pool, READER, "student") as read:
            read.of("stu-3", "/c/d_1/s1", ["stu-3"])
            raise LookupError("no such student")
    # A block that forgot to name what it read is a bug, not an unaudited answer.
    with pytest.raises(RuntimeError, match="did not name what it read"):
        async with audit.reading(pool, READER, "student"):
            pass
    assert await pool.fetchval("SELECT count(*) FROM audit_reads") == 1


async def test_query_is_limited_to_the_subtree_even_with_like_wildcards_in_org_ids(pool):
    await _read(pool, "/c/d_1/s_1/g1", "in-school")
    await _read(pool, "/c/d_1/s_1", "at-school")
    await _read(pool, "/c/d_1/sx1/g1", "lookalike")  # `_` must not match `x`
    await _read(pool, "/c/d_1/s_10", "prefix-sibling")  # a sibling whose id starts with ours
    await _read(pool, "/c/d%/s1", "percent")
    rows = await audit.query(pool, under="/c/d_1/s_1")
    assert sorted(r["resource_id"] for r in rows) == ["at-school", "in-school"]
    assert [r["resource_id"] for r in await audit.query(pool, under="/c/d%")] == ["percent"]
    assert len(await audit.query(pool, under="/c")) == 5
    assert [r["resource_id"] for r in await audit.query(pool, under="/c", person_id="lookalike")] == ["lookalike"]


async def test_a_list_across_schools_shows_in_each_school_auditors_log_naming_only_their_pupils(pool):
    async with pool.acquire() as conn, conn.transaction():
        await audit.record(
            conn,
            READER,
            action="list",
            resource_type="student",
            org_path="/c/d_1",
            subject_ids=["a1", "a2", "b1"],
            subject_paths={"a1": "/c/d_1/s_1/g1", "a2": "/c/d_1/s_1/g2", "b1": "/c/d_1/sx1/g1"},
        )
    [row] = await audit.query(pool, under="/c/d_1/s_1")
    assert (row["org_path"], row["subject_ids"]) == ("/c/d_1", ["a1", "a2"])
    [row] = await audit.query(pool, under="/c/d_1/sx1/g1")
    assert row["subject_ids"] == ["b1"]
    assert (await audit.query(pool, under="/c/d_1"))[0]["subject_ids"] == ["a1", "a2", "b1"]
    # Asking about another school's pupil confirms nothing; units that no subject sits in see nothing.
    assert await audit.query(pool, under="/c/d_1/s_1", person_id="b1") == []
    assert [r["subject_ids"] for r in await audit.query(pool, under="/c/d_1/s_1", person_id="a2")] == [["a1", "a2"]]
    assert await audit.query(pool, under="/c/d_1/s_10") == []
    assert await audit.query(pool, under="/c/d_2") == []


async def test_a_running_service_applies_its_configured_retention(make_settings):
    settings = make_settings(KitSettings, audit_retention_days=365)
    pool = await db.create_pool(settings.database_url, settings.db_schema)
    try:
        await db.migrate(settings.database_url, settings.db_schema, db.KIT_MIGRATIONS)
        for days in (400, 10):
            await pool.execute(
                "INSERT INTO audit_reads (at, subject, roles, reader_path, org_path, action, resource_type)"
                " VALUES (now() - make_interval(days => $1), 'x', '{auditor}', '/c', '/c/s', 'read', 'student')",
                days,
            )
        runtime = await start_runtime(
            ServiceSpec(settings=settings, migrations=spec(settings).migrations, background=[audit.purge_loop])
        )
        try:
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 1 FROM audit_reads"), timeout=15)
            kept = await pool.fetchval("SELECT now() - at < interval '365 days' FROM audit_reads")
            assert kept
        finally:
            await stop_runtime(runtime)
    finally:
        await pool.close()
