"""The kit's entity locks (`shared.inbox.Locked`): events about one entity on different partitions serialize across
lanes and replicas, and overlapping lock sets never deadlock."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from shared import db
from shared.events import Event, occurred_at
from shared.inbox import Handler, InboxConsumer, Locked
from shared.outbox import add_events
from shared.testing.fixtures import stable_members, wait_for
from shared.web import ServiceSpec, start_runtime, stop_runtime
from tests.integration.kitapp import TOPIC, ItemAdded, KitSettings, spec

pytestmark = pytest.mark.integration

PATHS = [f"/c/d{i}" for i in range(5)]
EVENTS = 600


async def tally(conn: asyncpg.Connection, event: Event[ItemAdded]) -> None:
    """Read, then write what was read plus one: two of these at once on one path lose an update."""
    p = event.payload
    n = await conn.fetchval("SELECT n FROM tally WHERE org_path = $1", p.org_path) or 0
    await conn.execute(
        "INSERT INTO tally VALUES ($1, $2) ON CONFLICT (org_path) DO UPDATE SET n = excluded.n", p.org_path, n + 1
    )


def path_and_neighbour(p: ItemAdded) -> list[str]:
    """The event's path and another one, in no particular order: lock sets overlap in every direction."""
    other = PATHS[(PATHS.index(p.org_path) + 1 + p.seq % 3) % len(PATHS)]
    return [other, p.org_path] if p.seq % 2 else [p.org_path, other]


async def _two(members: Awaitable[int]) -> bool:
    return await members == 2


class CountingFailures(InboxConsumer):
    """Counts failed transactions: a deadlock would fail one (then be retried in place or redone record by record)."""

    failed = 0

    async def _transaction(self, records: list[ConsumerRecord]) -> None:
        try:
            await super()._transaction(records)
        except Exception:
            self.failed += 1
            raise


async def test_locked_handlers_serialize_on_their_entities_across_lanes_and_replicas(make_settings):
    settings = make_settings(KitSettings, topic_partitions=6, consumer_parallelism=3)
    runtime = await start_runtime(ServiceSpec(settings=settings, migrations=spec(settings).migrations, topics=[TOPIC]))
    await runtime.pool.execute("CREATE TABLE tally (org_path text PRIMARY KEY, n int NOT NULL)")
    handlers: dict[str, Handler] = {"kittest.item.added.v1": Locked(path_and_neighbour, tally)}
    replicas = [CountingFailures(settings, runtime.pool, "kittest.tally", handlers) for _ in range(2)]
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks = [asyncio.create_task(c.run()) for c in replicas]
        group = settings.topic_prefix + "kittest.tally"
        await wait_for(lambda: _two(stable_members(settings.kafka_bootstrap_servers, group)), timeout=60, interval=0.5)
        # Keyed by item id (spread over six partitions), about five paths: every path is in every lane.
        items = [
            ItemAdded(item_id=f"i{i}", seq=i, org_path=PATHS[i % 5], occurred_at=occurred_at()) for i in range(EVENTS)
        ]
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_events(conn, items)
        await wait_for(
            lambda: runtime.pool.fetchval("SELECT count(*) = $1 FROM inbox WHERE consumer = 'kittest.tally'", EVENTS),
            timeout=60,
        )
        counts = {r["org_path"]: r["n"] for r in await runtime.pool.fetch("SELECT org_path, n FROM tally")}
        assert counts == dict(Counter(i.org_path for i in items))  # no update lost
        assert all(c.applied > 0 for c in replicas)  # both replicas took part
        assert sum(c.failed for c in replicas) == 0  # no transaction failed: no deadlock
        assert sum(c.dead_lettered for c in replicas) == 0
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        await stop_runtime(runtime)


async def test_the_database_computes_the_same_lock_keys_as_lock_key(raw_conn: asyncpg.Connection) -> None:
    """`db.xact_lock_many` hashes names in SQL: the keys it holds are `db.lock_key`'s, so a lock taken one way
    (`db.xact_lock`, an older version during a rolling deploy) excludes the same lock taken the other."""
    names = ["entity:s:family:f-1", "entity:s:student:学生-1", 'odd "name", {with} \\ and\nnewline', "x" * 300]
    async with raw_conn.transaction():
        await db.xact_lock_many(raw_conn, [*names, names[0]])
        held = await raw_conn.fetch(
            "SELECT ((classid::bigint << 32) | objid::bigint) AS k FROM pg_locks"
            " WHERE locktype = 'advisory' AND objsubid = 1 AND pid = pg_backend_pid()"
        )
    assert sorted(r["k"] for r in held) == sorted(db.lock_key(n) for n in names)
