"""A first load of guardians and students builds their secondary indexes after the rows (migration 009): the same
indexes after as before, the same answer and events, and only the owner's functions may drop and rebuild them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from demo import citygen
from services.committees.store import upserts
from shared import db
from shared.devstack.postgres import service_url
from shared.testing.fixtures import drop_test_resources

pytestmark = pytest.mark.integration

MIGRATIONS = [db.KIT_MIGRATIONS, Path(upserts.__file__).parents[1] / "migrations"]
INDEXES = """
SELECT x.indexrelid::regclass::text AS name, x.indexrelid::int AS oid, pg_get_indexdef(x.indexrelid) AS definition,
       EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = x.indexrelid) AS constraint
FROM pg_index x WHERE x.indrelid = $1::regclass
"""


async def indexes(conn: asyncpg.Connection, table: str) -> dict[str, asyncpg.Record]:
    return {r["name"]: r for r in await conn.fetch(INDEXES, table)}


async def test_a_first_load_rebuilds_the_secondary_indexes_with_the_same_answer(svc, small_city, monkeypatch):
    monkeypatch.setattr(upserts, "BULK_ROWS", 1)
    monkeypatch.setattr(upserts, "DEFER_INDEXES_ROWS", 1)
    conn = await asyncpg.connect(svc.settings.database_url, server_settings={"search_path": svc.settings.db_schema})
    try:
        before = {t: await indexes(conn, t) for t in upserts.DEFERRABLE}
        texts, expected_errors = citygen.plant_bad_rows(citygen.csv_texts(small_city))
        job = await svc.run_import(csv=texts)
        after = {t: await indexes(conn, t) for t in upserts.DEFERRABLE}
        counts = small_city.counts()
        assert {e: job["counts"][e]["created"] for e in counts} == counts
        assert {(e["entity"], e["row"], e["field"]) for e in job["errors"]} == expected_errors
        for table in upserts.DEFERRABLE:
            assert after[table].keys() == before[table].keys()
            for name, index in after[table].items():
                assert index["definition"] == before[table][name]["definition"]
                # rebuilt (a new index) unless it backs a constraint (never dropped)
                assert (index["oid"] == before[table][name]["oid"]) == index["constraint"], name
            assert sum(not i["constraint"] for i in after[table].values()) >= 2
        # the rebuilt unique index still refuses a second holder of a national ID
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "UPDATE students SET national_id = (SELECT national_id FROM students WHERE national_id IS NOT NULL"
                " LIMIT 1) WHERE student_id = (SELECT student_id FROM students WHERE national_id IS NOT NULL"
                " ORDER BY student_id DESC LIMIT 1)"
            )

        await svc.drained()
        events = await svc.events()
        assert Counter(e["type"] for e in events) == {
            "committees.org_unit.registered.v1": counts["org_units"],
            "committees.staff.registered.v1": counts["staff"],
            "committees.student.registered.v1": counts["students"],
            "committees.family.registered.v1": counts["families"],
        }
        fams = [e["data"] for e in events if e["type"] == "committees.family.registered.v1"]
        assert sum(len(f["guardian_ids"]) for f in fams) == counts["guardians"]

        # a re-import finds the tables loaded: nothing dropped, nothing changed, nothing published
        again = await svc.run_import(csv=texts)
        assert {t: await indexes(conn, t) for t in upserts.DEFERRABLE} == after
        assert all(c["created"] == c["updated"] == 0 for c in again["counts"].values())
        assert again["events"] == 0
    finally:
        await conn.close()


@pytest.fixture
async def schema(stack, unique):
    name = f"t_{unique}_first_load"
    await db.migrate(stack.database_url, name, *MIGRATIONS)  # as the owner
    try:
        yield name
    finally:
        await drop_test_resources(stack, f"t{unique}.", {name})


@pytest.fixture
async def service(stack, schema):
    conn = await db.connect(service_url(stack.database_url), schema)
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_service_role_defers_and_restores_only_through_the_owners_functions(service):
    before = await indexes(service, "students")
    async with service.transaction():
        dropped = await service.fetchval("SELECT defer_directory_indexes('students')")
        assert dropped == sum(not i["constraint"] for i in before.values()) >= 4
        assert {n for n, i in (await indexes(service, "students")).items()} == {
            n for n, i in before.items() if i["constraint"]
        }
        assert await service.fetchval("SELECT restore_directory_indexes('students')") == dropped
    after = await indexes(service, "students")
    assert {n: i["definition"] for n, i in after.items()} == {n: i["definition"] for n, i in before.items()}

    # only the two tables; a loaded table keeps its indexes
    with pytest.raises(asyncpg.RaiseError):
        await service.fetchval("SELECT defer_directory_indexes('families')")
    await service.execute(
        "INSERT INTO students (student_no, name, class_id, org_path, family_id) VALUES ('s1', 'n', 'c', '/p', 'f')"
    )
    async with service.transaction():
        assert await service.fetchval("SELECT defer_directory_indexes('students')") == 0
        assert (await indexes(service, "students")).keys() == before.keys()
    await service.execute("DELETE FROM students")

    # definitions the caller planted under the table's name are never run with the owner's rights
    async with service.transaction():
        await service.execute(
            "CREATE TEMP TABLE deferred_directory_indexes (entity text, definition text) ON COMMIT DROP"
        )
        await service.execute("INSERT INTO deferred_directory_indexes VALUES ('students', 'DROP TABLE students')")
        with pytest.raises(asyncpg.RaiseError, match="not the directory owner"):
            await service.fetchval("SELECT restore_directory_indexes('students')")
    async with service.transaction():
        await service.execute(
            "CREATE TEMP TABLE deferred_directory_indexes (entity text, definition text) ON COMMIT DROP"
        )
        with pytest.raises(asyncpg.RaiseError, match="not the directory owner"):
            await service.fetchval("SELECT defer_directory_indexes('students')")
    assert (await indexes(service, "students")).keys() == before.keys()
