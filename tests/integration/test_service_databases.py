"""One database per service (as deployed): a long snapshot in reporting's database does not make visits' relay walk
the outbox rows it already deleted.

The relay reads the next batch by walking the outbox's primary key from the lowest id; the rows it published are
deleted. While a snapshot older than those deletes is open where it counts, each read visits every deleted row's
index entry and heap tuple before the live ones (docs/scaling.md, "Why PostgreSQL grows with the city"). For an
ordinary table PostgreSQL (14 on) counts only the snapshots of backends in the table's own database, so reporting's
repeatable-read refresh in its own database leaves visits' reads flat. A snapshot in visits' own database (autovacuum's
ANALYZE) still keeps its deleted rows; the relay's lower bound (shared/relay.py `LowerBound`) starts its walk after
them. Measured in buffers the read touches (EXPLAIN ANALYZE BUFFERS), not in time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from shared import db
from shared.db import service_database_url
from shared.devstack import StackInfo
from shared.devstack.services import SERVICES
from shared.relay import FETCH
from shared.testing.fixtures import wait_for
from shared.web import start_runtime, stop_runtime
from tests.integration.kitapp import TOPIC, KitSettings, spec

pytestmark = pytest.mark.integration

DELETED = 20_000  # published (deleted) outbox rows behind the live ones
LIVE = 100
INSERT = (
    "INSERT INTO outbox (event_id, topic, key, type, envelope)"
    " SELECT gen_random_uuid(), 't', 'k' || g, 'x', jsonb_build_object('g', g, 'pad', repeat('x', 300))"
    " FROM generate_series(1, $1) AS g"
)


def test_each_service_has_its_own_database_url() -> None:
    cluster = "postgresql://owner:secret@db.example:5432/postgres?sslmode=require"
    visits = service_database_url(cluster, "visits")
    assert visits == "postgresql://owner:secret@db.example:5432/visits?sslmode=require"
    assert (
        service_database_url(visits, "reporting")
        == "postgresql://owner:secret@db.example:5432/reporting?sslmode=require"
    )


async def test_devstack_made_every_service_database(stack: StackInfo) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        names = {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()
    assert set(SERVICES) <= names


@pytest.fixture
async def outbox(stack: StackInfo, unique: str) -> AsyncIterator[asyncpg.Connection]:
    """A kit outbox in a private schema of visits' database, on a connection set up as the relay's."""
    url, schema = service_database_url(stack.database_url, "visits"), f"t_{unique}_visits"
    await db.migrate(url, schema, db.KIT_MIGRATIONS)
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    await conn.execute("SET enable_bitmapscan = off")  # as the relay's session (shared/relay.py)
    try:
        yield conn
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def read_cost(stack: StackInfo, outbox: asyncpg.Connection, snapshot_in: str | None) -> int:
    """Buffers the relay's read touches (its third read: the first ones may mark dead entries) after DELETED rows
    were published and deleted, with a repeatable-read snapshot older than the deletes open in `snapshot_in`'s
    database (None: no snapshot)."""
    old = await asyncpg.connect(service_database_url(stack.database_url, snapshot_in)) if snapshot_in else None
    try:
        if old:
            await old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            await old.fetchval("SELECT count(*) FROM pg_class")  # the snapshot is taken by the first statement
        await outbox.execute(INSERT, DELETED)
        await outbox.execute("DELETE FROM outbox")
        await outbox.execute(INSERT, LIVE)
        for _ in range(3):
            [plan] = json.loads(await outbox.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + FETCH, LIVE, [], 0))
        top = plan["Plan"]
        return int(top["Shared Hit Blocks"] + top["Shared Read Blocks"])
    finally:
        if old:
            await old.close()
        await outbox.execute("DELETE FROM outbox")


async def test_a_snapshot_in_reportings_database_leaves_the_relay_read_flat(
    stack: StackInfo, outbox: asyncpg.Connection
) -> None:
    none = await read_cost(stack, outbox, None)
    reporting = await read_cost(stack, outbox, "reporting")
    visits = await read_cost(stack, outbox, "visits")  # the same snapshot in visits' own database: the walk is back
    # 20,000 deleted rows of ~370 bytes fill ~1,000 heap pages, walked one by one under the visits snapshot: 268
    # buffers without a snapshot, 323 with it in reporting's database (the index pages of the rows deleted before),
    # 1,430 with it in visits' (PostgreSQL 15.18). With every service in one database the second is 1,375.
    assert visits > DELETED // 25, (none, reporting, visits)
    assert reporting < visits / 3, (none, reporting, visits)
    assert reporting < none * 1.5, (none, reporting, visits)


async def walk_cost(conn: asyncpg.Connection, after: int) -> int:
    """Buffers of the relay's read from `after` (its third: the first ones may mark dead entries), on a pool's
    connection (its json codec parses the plan)."""
    for _ in range(3):
        [plan] = await conn.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + FETCH, LIVE, [], after)
    return int(plan["Plan"]["Shared Hit Blocks"] + plan["Plan"]["Shared Read Blocks"])


async def test_the_relays_lower_bound_keeps_its_read_flat_with_an_old_snapshot_in_its_own_database(
    stack: StackInfo, make_settings: Any
) -> None:
    """An old snapshot in visits' own database (autovacuum's ANALYZE holds one for seconds) keeps every outbox row
    deleted since alive; the relay walks from its lower bound (shared/relay.py `LowerBound`), not from the lowest id,
    so its read costs the same after 10 k or 20 k rows published, where a walk from 0 grows with them."""
    settings = make_settings(KitSettings, database_url=service_database_url(stack.database_url, "visits"))
    runtime = await start_runtime(spec(settings, consume=False))
    old = await asyncpg.connect(settings.database_url)
    pool, relay = runtime.pool, runtime.relay
    costs: list[tuple[int, int]] = []
    try:
        await old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        await old.fetchval("SELECT count(*) FROM pg_class")  # a snapshot, and no transaction id (as ANALYZE)
        await wait_for(lambda: relay.is_leader, timeout=10)
        async with pool.acquire() as conn:
            await conn.execute("SET enable_bitmapscan = off")  # as the relay's session
            for _half in range(2):
                for _ in range(DELETED // 2 // 500):  # commits of 500 rows, each published and deleted
                    await conn.execute(INSERT.replace("'t'", "$2"), 500, TOPIC)
                    await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=30)
                highest = await conn.fetchval("SELECT last_value FROM outbox_id_seq")
                # The bound passes them two deletes later (`LowerBound`), once no transaction older than those
                # deletes is open anywhere in the cluster (another test's writer may be, for a while).
                deadline = time.monotonic() + 60
                while relay.bound.after < highest and time.monotonic() < deadline:
                    await conn.execute(INSERT.replace("'t'", "$2"), 1, TOPIC)
                    await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=30)
                    await asyncio.sleep(0.1)
                assert relay.bound.after >= highest
                costs.append((await walk_cost(conn, 0), await walk_cost(conn, relay.bound.after)))
            await conn.execute("RESET enable_bitmapscan")
    finally:
        await old.close()
        await stop_runtime(runtime)
    (from_zero_half, bounded_half), (from_zero, bounded) = costs
    # Measured (PostgreSQL 15.18): from 0, 556 and 1,109 buffers; from the bound, 3 and 3. With the bound left out of
    # the read (`id > $3`), 556 and 1,109 both ways.
    assert from_zero > DELETED // 25 and from_zero > 1.5 * from_zero_half, costs  # the old snapshot keeps them
    assert bounded <= bounded_half + 5 and bounded * 20 < from_zero, costs
