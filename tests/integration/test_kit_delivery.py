"""The kit's delivery guarantees, proven against the real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import REGISTRY

from shared import db, kafka
from shared.events import occurred_at
from shared.inbox import Batch, InboxConsumer
from shared.outbox import add_event, add_events
from shared.relay import FETCH, Relay
from shared.testing.fixtures import read_topic, wait_for
from shared.web import Runtime, ServiceSpec, migrate, start_runtime, stop_runtime
from tests.integration.kitapp import BATCH_SIZES, TOPIC, ItemAdded, KitSettings, on_item_added, on_items_added, spec

pytestmark = pytest.mark.integration


def item(item_id: str, seq: int) -> ItemAdded:
    return ItemAdded(item_id=item_id, seq=seq, org_path="/c/d", occurred_at=occurred_at())


async def applied_rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT item_id, seq FROM applied ORDER BY applied_at, seq")


class CrashBeforeMarking(Relay):
    """A relay that dies once after Kafka acked a batch and before it marked the rows published."""

    crashed = False

    async def mark_published(self, conn: asyncpg.Connection, ids: list[int]) -> tuple[int, int]:
        if not self.crashed:
            self.crashed = True
            raise ConnectionResetError("simulated crash between ack and mark")
        return await super().mark_published(conn, ids)


async def test_outbox_to_kafka_exactly_once_in_order_despite_relay_crash_and_late_commit(make_settings):
    settings = make_settings(KitSettings, relay_batch_size=50)
    runtime = await start_runtime(spec(settings))
    runtime.relay.stop()  # replace the stock relay with one that crashes once
    runtime.tasks[0].cancel()
    relay = CrashBeforeMarking(settings)
    relay_task = asyncio.create_task(relay.run())
    try:
        pool = runtime.pool
        # A transaction that takes the lowest ids and commits last.
        late = await pool.acquire()
        tx = late.transaction()
        await tx.start()
        await add_events(late, [item("late", 0), item("late", 1)])
        # Many committed transactions with higher ids, 4 keys x 50 events each, in per-key order.
        for seq in range(50):
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, [item(f"k{k}", seq) for k in range(4)])
        # The open transaction holding the lowest ids holds nothing back: the 200 committed rows are published (the
        # relay deletes what Kafka acked) while it is still open.
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=30)
        await tx.commit()
        await pool.release(late)

        await wait_for(lambda: pool.fetchval("SELECT count(*) = 202 FROM applied"), timeout=30)
        # The crash re-sent a batch: Kafka holds duplicates, the inbox absorbed them.
        assert relay.crashed
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(TOPIC), expect=202)
        assert len(messages) > 202
        # And its rows were not skipped.
        rows = await applied_rows(pool)
        assert len(rows) == 202
        by_key: dict[str, list[int]] = defaultdict(list)
        for r in rows:
            by_key[r["item_id"]].append(r["seq"])
        assert by_key["late"] == [0, 1]
        for k in range(4):
            assert by_key[f"k{k}"] == list(range(50)), "per-key order must hold"
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
        # Kafka order per key equals commit order, too.
        seqs: dict[str, list[int]] = defaultdict(list)
        seen = set()
        for m in messages:
            if m["value"]["id"] in seen:
                continue
            seen.add(m["value"]["id"])
            seqs[m["key"]].append(m["value"]["data"]["seq"])
        assert all(v == sorted(v) for v in seqs.values())
        assert messages[0]["headers"]["traceparent"].startswith("00-")
    finally:
        relay.stop()
        relay_task.cancel()
        await stop_runtime(runtime)


async def test_a_lower_id_committed_after_a_higher_one_was_sent_and_deleted_goes_out_once(make_settings):
    """The relay's walk starts after a lower bound (`LowerBound`), not at the lowest id, and not after the last id it
    sent: ids are taken at insert, so of two concurrent transactions the one holding the lower id may commit after
    the relay sent and deleted the higher. Both go out, each exactly once."""
    settings = make_settings(KitSettings, relay_batch_size=50)
    runtime = await start_runtime(spec(settings))
    topic = settings.topic(TOPIC)
    pool = runtime.pool
    low = await pool.acquire()
    try:
        await wait_for(lambda: runtime.relay.is_leader, timeout=10)
        tx = low.transaction()
        await tx.start()
        await add_events(low, [item("low", 0)])  # takes the lowest id, commits last
        for seq in range(5):  # higher ids, each sent and deleted before the next; the relay deletes five times
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, [item("high", seq)])
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=10)
        sent_before = runtime.relay.published
        assert sent_before == 5
        highest = await pool.fetchval("SELECT last_value FROM outbox_id_seq")
        await tx.commit()
        await wait_for(lambda: runtime.relay.published == 6, timeout=10)
        await asyncio.sleep(0.5)  # nothing more goes out
        messages = await read_topic(settings.kafka_bootstrap_servers, topic, expect=6, idle=1.0)
        assert sorted((m["key"], m["value"]["data"]["seq"]) for m in messages) == [
            ("high", 0), ("high", 1), ("high", 2), ("high", 3), ("high", 4), ("low", 0),
        ]  # fmt: skip
        assert len({m["value"]["id"] for m in messages}) == 6
        # Once no transaction that took an id below them is open, the walk starts after the rows sent (two deletes
        # later: one whose snapshot shows them ended, then a read after it)
        # (and once no older transaction is open anywhere in the cluster: another test's writer may be, for a while).
        seq, deadline = 5, time.monotonic() + 60
        while runtime.relay.bound.after < highest and time.monotonic() < deadline:
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, [item("high", seq)])
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=10)
            seq += 1
            await asyncio.sleep(0.1)
        assert runtime.relay.bound.after >= highest, (seq, runtime.relay.bound.after, highest)
    finally:
        await pool.release(low)
        await stop_runtime(runtime)


async def test_a_row_whose_id_came_before_its_transaction_id_is_not_left_behind(make_settings, raw_conn, unique):
    """The lower bound's proof needs every outbox id taken by a transaction that already has its transaction id.
    PostgreSQL computes a row's defaults (its id) before it assigns the transaction id at the row's write; a BEFORE
    trigger holds an insert in that moment while later rows are sent and deleted. The held row still goes out when its
    transaction commits (shared migration 007 takes the transaction id first)."""
    settings = make_settings(KitSettings, relay_batch_size=50)
    runtime = await start_runtime(spec(settings))
    pool = runtime.pool
    lock = int(unique[:8], 16)
    await raw_conn.execute(f'SET search_path = "{settings.db_schema}"')
    await raw_conn.execute(
        "CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        f" IF NEW.key = 'held' THEN PERFORM pg_advisory_lock({lock}); PERFORM pg_advisory_unlock({lock}); END IF;"
        " RETURN NEW; END $$;"
        " CREATE TRIGGER hold BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION hold()"
    )
    await raw_conn.execute("SELECT pg_advisory_lock($1)", lock)

    async def held_write() -> None:
        async with pool.acquire() as conn, conn.transaction():  # its only write: no transaction id before the row
            await add_events(conn, [item("held", 0)])

    # nextval assigns a transaction id itself when it logs the sequence, once every 32 values: the first is spent here
    async with pool.acquire() as conn, conn.transaction():
        await add_events(conn, [item("first", 0)])
    writer = asyncio.create_task(held_write())
    try:
        await wait_for(lambda: runtime.relay.is_leader, timeout=10)
        waiting = "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'advisory' AND query LIKE '%outbox%'"
        await wait_for(lambda: raw_conn.fetchval(waiting), timeout=10)  # its id is taken, its row not yet written
        for seq in range(5):  # higher ids, sent and deleted while it waits
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, [item("high", seq)])
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=10)
        await wait_for(lambda: runtime.relay.published == 6, timeout=10)
        await raw_conn.execute("SELECT pg_advisory_unlock($1)", lock)
        await writer
        await wait_for(lambda: runtime.relay.published == 7, timeout=10)
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(TOPIC), expect=7, idle=1.0)
        assert sorted(m["key"] for m in messages) == ["first", "held"] + ["high"] * 5
    finally:
        await raw_conn.execute("SELECT pg_advisory_unlock_all()")
        await asyncio.gather(writer, return_exceptions=True)
        await raw_conn.execute("RESET search_path")
        await stop_runtime(runtime)


class CrashBeforeOffsetCommit(InboxConsumer):
    """A consumer that dies once after its database commit and before committing the offset."""

    crashed = False

    async def _process(self, records: Any, dlt: Any) -> None:
        await super()._process(records, dlt)
        if not self.crashed:
            self.crashed = True
            raise ConnectionResetError("simulated crash before offset commit")


async def test_consumer_crash_after_db_commit_applies_nothing_twice(make_settings):
    settings = make_settings(KitSettings)
    runtime = await start_runtime(ServiceSpec(settings=settings, migrations=spec(settings).migrations, topics=[TOPIC]))
    consumer = CrashBeforeOffsetCommit(
        settings, runtime.pool, "kittest.items", {"kittest.item.added.v1": on_item_added}
    )
    task = asyncio.create_task(consumer.run())
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item(f"x{i}", i) for i in range(300)])
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 300 FROM applied"), timeout=30)
        await asyncio.sleep(1.0)  # let redelivered records arrive and be absorbed
        assert consumer.crashed
        assert await runtime.pool.fetchval("SELECT count(*) FROM applied") == 300
        assert await runtime.pool.fetchval("SELECT max(n) FROM applied_counts") == 1
        assert await runtime.pool.fetchval("SELECT count(*) FROM inbox") == 300
    finally:
        task.cancel()
        await stop_runtime(runtime)


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_partition_keeps_flowing(make_settings):
    settings = make_settings(KitSettings, topic_partitions=1, consumer_max_attempts=3)
    runtime = await start_runtime(spec(settings))
    topic = settings.topic(TOPIC)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    skipped_before = consumed("unknown_type")
    try:
        good_before = item("good-1", 1)
        async with runtime.pool.acquire() as conn, conn.transaction():
            written = await add_event(conn, good_before)
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 1 FROM applied"))
        envelope = orjson.loads(written.envelope)
        unknown = {**envelope, "id": "6f1d7a3e-0000-4000-8000-000000000001", "type": "kittest.item.vanished.v1"}
        newer = {**envelope, "id": "6f1d7a3e-0000-4000-8000-000000000003", "type": "kittest.item.added.v2"}
        failing = {
            **envelope,
            "id": "6f1d7a3e-0000-4000-8000-000000000002",
            "data": {**envelope["data"], "item_id": "fail-1"},
        }
        await producer.send_and_wait(topic, b"{not json", key=b"p")
        await producer.send_and_wait(topic, orjson.dumps(unknown), key=b"p")
        await producer.send_and_wait(topic, orjson.dumps(newer), key=b"p")
        await producer.send_and_wait(topic, orjson.dumps(failing), key=b"p")
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_event(conn, item("good-2", 2))

        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 2 FROM applied"), timeout=30)
        dlt = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.kittest.items.dlt", expect=2)
        assert len(dlt) == 2
        errors = [m["headers"]["dlt.error"] for m in dlt]
        assert errors[0].startswith("poison: not a valid envelope")
        assert "handler refuses this item" in errors[1]
        assert [m["headers"]["dlt.attempts"] for m in dlt] == ["1", "3"]
        for m in dlt:
            assert m["headers"]["dlt.original.topic"] == topic
            assert m["headers"]["dlt.original.partition"] == "0"
            assert int(m["headers"]["dlt.original.offset"]) >= 1
        assert dlt[1]["value"]["data"]["item_id"] == "fail-1"
        assert [r["item_id"] for r in await applied_rows(runtime.pool)] == ["good-1", "good-2"]
        # Types this version does not know (a newer .v2 in a rolling deploy) are counted and skipped.
        assert consumed("unknown_type") - skipped_before == 2
        outcomes = dict(await runtime.pool.fetch("SELECT outcome, count(*) FROM inbox GROUP BY outcome"))
        assert outcomes == {"applied": 2, "dead_lettered": 2}
    finally:
        await producer.stop()
        await stop_runtime(runtime)


def consumed(outcome: str) -> float:
    """The kit's consumed-events counter of the test service for one outcome."""
    labels = {"service": "kittest", "group": "kittest.items", "topic": TOPIC, "outcome": outcome}
    return REGISTRY.get_sample_value("events_consumed_total", labels) or 0.0


class CrashAfterThePoison(InboxConsumer):
    """A consumer that dies once after the lane holding the failing event and before committing the offset."""

    crashed = False

    async def _process(self, records: Any, dlt: Any) -> None:
        await super()._process(records, dlt)
        if not self.crashed and any(b"fail-b" in (r.value or b"") for r in records):
            self.crashed = True
            raise ConnectionResetError("simulated crash before offset commit")


async def test_a_batch_subscription_applies_many_at_once_and_isolates_a_failing_event(make_settings):
    settings = make_settings(KitSettings, topic_partitions=2, consumer_max_attempts=2)
    runtime = await start_runtime(ServiceSpec(settings=settings, migrations=spec(settings).migrations, topics=[TOPIC]))
    BATCH_SIZES.clear()
    attempts_before = consumed("failed_attempt")
    task = None
    consumer = CrashAfterThePoison(
        settings, runtime.pool, "kittest.items", Batch(frozenset({"kittest.item.added.v1"}), on_items_added)
    )
    try:
        # Written before the consumer starts, so its first polls hold many events; one of them always fails.
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item(f"b{i}", i) for i in range(400)] + [item("fail-b", 0)])
        await wait_for(
            lambda: runtime.pool.fetchval("SELECT count(*) = 0 FROM outbox")  # all 401 published
        )
        task = asyncio.create_task(consumer.run())
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 400 FROM applied"), timeout=30)
        # The crash came after the poison's batch and before its offset commit: the poison record came again, was
        # tried again (two attempts each time) and was not parked twice.
        await wait_for(lambda: consumed("failed_attempt") - attempts_before >= 4, timeout=30)
        dlt = await read_topic(settings.kafka_bootstrap_servers, f"{settings.topic(TOPIC)}.kittest.items.dlt", expect=1)
        assert consumer.crashed
        assert consumer.dead_lettered == 1
        assert [m["value"]["data"]["item_id"] for m in dlt] == ["fail-b"]
        assert dlt[0]["headers"]["dlt.attempts"] == "2"
        assert await runtime.pool.fetchval("SELECT count(*) FROM applied") == 400
        assert await runtime.pool.fetchval("SELECT max(n) FROM applied_counts") == 1
        assert max(BATCH_SIZES) > 1  # set-based: several events per call
        assert consumer.applied == 400
    finally:
        if task is not None:
            task.cancel()
        await stop_runtime(runtime)


async def test_the_relay_publishes_while_the_services_loop_is_busy(make_settings):
    """A saturated request loop does not hold publishing back: the relay has its own thread and loop."""
    runtime = await start_runtime(spec(make_settings(KitSettings), consume=False))
    try:
        await wait_for(lambda: runtime.relay.is_leader, timeout=10)
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item("busy", seq) for seq in range(10)])
        # The service's loop is stuck in CPU work (a large upload being validated): nothing else runs on it now.
        deadline = time.monotonic() + 30
        while runtime.relay.published < 10 and time.monotonic() < deadline:
            time.sleep(0.01)  # noqa: ASYNC251 — blocking this loop is the point
        assert runtime.relay.published == 10
        assert await runtime.pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        await stop_runtime(runtime)


async def test_rolled_back_transactions_publish_nothing(make_settings):
    settings = make_settings(KitSettings)
    runtime = await start_runtime(spec(settings))
    try:
        with pytest.raises(RuntimeError):
            async with runtime.pool.acquire() as conn, conn.transaction():
                await add_events(conn, [item("rolled-back", i) for i in range(5)])
                raise RuntimeError("business rule failed")
        assert await runtime.pool.fetchval("SELECT count(*) FROM outbox") == 0  # nothing of it waits to be sent
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_event(conn, item("kept", 0))
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 1 FROM applied"))
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(TOPIC), expect=1)
        assert [m["value"]["data"]["item_id"] for m in messages] == ["kept"]
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 0 FROM outbox"))  # sent, so deleted
    finally:
        await stop_runtime(runtime)


async def test_migrations_apply_once_under_concurrency(make_settings, raw_conn):
    settings = make_settings(KitSettings)
    # Four migrators on an empty database: the schema does not exist yet either.
    results = await asyncio.gather(
        *(
            db.migrate(settings.database_url, settings.db_schema, db.KIT_MIGRATIONS, spec(settings).migrations)
            for _ in range(4)
        )
    )
    n = migration_count(settings)
    assert sorted(len(r) for r in results) == [0, 0, 0, n]
    assert await raw_conn.fetchval(f'SELECT count(*) FROM "{settings.db_schema}".schema_migrations') == n


def migration_count(settings: KitSettings) -> int:
    return len([*db.KIT_MIGRATIONS.glob("*.sql"), *spec(settings).migrations.glob("*.sql")])


async def test_two_replicas_start_at_once_on_an_empty_database(make_settings):
    for _ in range(3):  # a race shows rarely per try
        settings = make_settings(KitSettings, db_schema=f"t_{uuid.uuid4().hex[:10]}_kittest")
        # Bounded: a start that waits forever fails here, naming the step, not at the run's timeout.
        runtimes = await asyncio.wait_for(
            asyncio.gather(*(start_runtime(spec(settings)) for _ in range(2)), return_exceptions=True), timeout=120
        )
        try:
            assert not [r for r in runtimes if isinstance(r, BaseException)], runtimes
            for r in runtimes:
                assert isinstance(r, Runtime)
                assert await r.pool.fetchval("SELECT count(*) FROM schema_migrations") == migration_count(settings)
        finally:
            for r in runtimes:
                if isinstance(r, Runtime):
                    await stop_runtime(r)


async def test_a_stop_never_hangs_on_a_task_that_ignores_cancellation(make_settings, caplog):
    """A service shutting down (SIGTERM, a test's teardown) must end even when one of its tasks will not."""
    release = asyncio.Event()

    async def stubborn(runtime: Runtime) -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # e.g. a client library's stop() waiting on a broker that never answers

    settings = make_settings(KitSettings, shutdown_timeout_seconds=1.0)
    base = spec(settings)
    runtime = await start_runtime(
        ServiceSpec(settings=settings, migrations=base.migrations, topics=base.topics, background=[stubborn])
    )
    try:
        await asyncio.wait_for(stop_runtime(runtime), timeout=30)
        assert "task stubborn did not stop: abandoned" in caplog.text
        assert runtime.pool.is_closing()
    finally:
        release.set()


async def test_a_locked_row_is_waited_for_not_dead_lettered(make_settings, raw_conn):
    settings = make_settings(KitSettings, topic_partitions=1, consumer_max_attempts=2)
    runtime = await start_runtime(spec(settings))
    try:
        # Another transaction holds the item's row: the handler's NOWAIT lock gets 55P03 from PostgreSQL, every time.
        await runtime.pool.execute("INSERT INTO items VALUES ('held', '/c/d', 0)")
        tx = raw_conn.transaction()
        await tx.start()
        await raw_conn.execute(f"SELECT 1 FROM \"{settings.db_schema}\".items WHERE item_id = 'held' FOR UPDATE")
        retries_before = consumed("transient_retry")
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item("held", 1), item("free", 2)])
        await wait_for(lambda: consumed("transient_retry") - retries_before >= 5, timeout=30)
        assert await runtime.pool.fetchval("SELECT count(*) FROM applied") == 0  # in order: 'free' waits too
        await tx.rollback()
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 2 FROM applied"), timeout=30)
        assert runtime.consumers[0].dead_lettered == 0
        assert await runtime.pool.fetchval("SELECT count(*) FROM inbox WHERE outcome = 'dead_lettered'") == 0
    finally:
        await stop_runtime(runtime)


STATEMENT_TIMEOUT_BATCHES: list[int] = []


async def slow_when_large(conn: asyncpg.Connection, events: list[Any]) -> None:
    """A set-based handler whose statement takes 50 ms per event and is cancelled by PostgreSQL after 1 s."""
    STATEMENT_TIMEOUT_BATCHES.append(len(events))
    await conn.execute("SET LOCAL statement_timeout = '1s'")
    await conn.execute("SELECT pg_sleep($1)", 0.05 * len(events))
    await on_items_added(conn, events)


async def test_a_batch_that_times_out_is_split_and_applied_record_by_record(make_settings):
    settings = make_settings(KitSettings, topic_partitions=1, consumer_max_attempts=1)
    runtime = await start_runtime(ServiceSpec(settings=settings, migrations=spec(settings).migrations, topics=[TOPIC]))
    STATEMENT_TIMEOUT_BATCHES.clear()
    consumer = InboxConsumer(
        settings, runtime.pool, "kittest.items", Batch(frozenset({"kittest.item.added.v1"}), slow_when_large)
    )
    task = None
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item(f"t{i}", i) for i in range(40)])
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 0 FROM outbox"))  # all 40 published
        task = asyncio.create_task(consumer.run())
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 40 FROM applied"), timeout=60)
        assert max(STATEMENT_TIMEOUT_BATCHES) > 20  # a batch was tried whole, timed out ...
        assert STATEMENT_TIMEOUT_BATCHES.count(1) >= 20  # ... and was applied record by record
        assert consumer.dead_lettered == 0
        assert await runtime.pool.fetchval("SELECT max(n) FROM applied_counts") == 1
    finally:
        if task is not None:
            task.cancel()
        await stop_runtime(runtime)


async def test_declared_topics_carry_min_insync_replicas(make_settings):
    settings = make_settings(KitSettings)
    runtime = await start_runtime(spec(settings))
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        topics = [settings.topic(TOPIC), f"{settings.topic(TOPIC)}.kittest.items.dlt"]
        await wait_for(lambda: runtime.consumers[0].ready.is_set())
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
        resources = [r for response in described for r in response.to_object()["resources"]]
        assert sorted(r["resource_name"] for r in resources) == sorted(topics)
        for resource in resources:
            entries = {e["config_names"]: e for e in resource["config_entries"]}
            entry = entries["min.insync.replicas"]
            assert entry["config_value"] == str(settings.topic_min_insync), resource["resource_name"]
            assert entry["config_source"] == 1, "set on the topic itself (DYNAMIC_TOPIC_CONFIG), not inherited"
            assert entries["retention.ms"]["config_value"] == "-1"
    finally:
        await admin.close()
        await stop_runtime(runtime)


async def test_a_topic_made_before_min_insync_was_declared_gets_it_and_keeps_its_own_settings(make_settings):
    settings = make_settings(KitSettings)
    name = settings.topic("kittest.legacy.events")
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        # As an older release (or an operator) made it: no min.insync.replicas of its own, another setting.
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs={"max.message.bytes": "2000000"})])
        await kafka.ensure_topics(settings.kafka_bootstrap_servers, [kafka.topic_spec(settings, name)])

        async def configs() -> dict[str, Any] | None:
            (response,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            (resource,) = response.to_object()["resources"]
            entries = {e["config_names"]: e for e in resource["config_entries"]}
            # The alter reaches the broker answering describe_configs a moment later (CI once read the default).
            return entries if entries["min.insync.replicas"]["config_source"] == 1 else None

        entries = await wait_for(configs, timeout=10)
        assert entries["min.insync.replicas"]["config_value"] == str(settings.topic_min_insync)
        assert entries["max.message.bytes"]["config_value"] == "2000000"
    finally:
        await admin.close()


BULK = (
    "INSERT INTO outbox (event_id, topic, key, type, envelope) SELECT gen_random_uuid(), 't', 'k' || g, 'x',"
    " jsonb_build_object('data', repeat('y', 700)) FROM generate_series(1, 20000) AS g"
)


@pytest.mark.parametrize("statistics", ["never taken", "taken while empty", "taken of the backlog"])
async def test_the_relay_reads_only_the_batch_right_after_a_bulk_write(make_settings, raw_conn, statistics):
    """Right after an import or a campaign launch the relay's read must touch only a batch of envelopes, whatever the
    statistics say of the outbox: not read and sort the whole backlog (0.55 s a batch with 41 k waiting, statistics
    never taken), and not scan the outbox once per row read (statistics taken by autovacuum while the outbox was
    empty, as it is between bursts: every estimate is then one row, and a join of the ids with the rows became a
    nested loop over the whole outbox: 1.5 M rows read per 1,000-row batch, a launch's drain 60 s instead of 5 s),
    nor scan it all per batch (statistics of the backlog: a hash join over every row)."""
    settings = make_settings(KitSettings)
    await migrate(spec(settings))
    await raw_conn.execute(f'SET search_path = "{settings.db_schema}"')
    try:
        await raw_conn.execute("ALTER TABLE outbox SET (autovacuum_enabled = false)")  # statistics as the test sets
        if statistics == "taken while empty":  # the drained outbox keeps its pages: 0 rows in N pages
            await raw_conn.execute(BULK)
            await raw_conn.execute("DELETE FROM outbox")
            await raw_conn.execute("VACUUM (TRUNCATE false, ANALYZE) outbox")
        await raw_conn.execute(BULK)
        if statistics == "taken of the backlog":
            await raw_conn.execute("ANALYZE outbox")
        plan = await raw_conn.fetchval(f"EXPLAIN (ANALYZE, VERBOSE, FORMAT JSON) {FETCH}", 500, [], 0)
    finally:
        await raw_conn.execute("RESET search_path")

    def envelope_rows(node: dict[str, Any]) -> int:
        own = node["Actual Rows"] * node["Actual Loops"] if any("envelope" in o for o in node.get("Output", [])) else 0
        return max([own, *(envelope_rows(child) for child in node.get("Plans", []))])

    assert envelope_rows(orjson.loads(plan)[0]["Plan"]) <= 500


class CountingReads(Relay):
    """The stock relay, counting its reads of the outbox."""

    reads = 0

    async def send_batch(self, conn: asyncpg.Connection, producer: AIOKafkaProducer, exclude: list[int]) -> Any:
        self.reads += 1
        return await super().send_batch(conn, producer, exclude)


@contextlib.asynccontextmanager
async def counting_relay(
    settings: KitSettings, kind: type[CountingReads] = CountingReads
) -> AsyncIterator[tuple[Runtime, Any]]:
    """A kit app whose stock relay is replaced by one that counts its reads (`kind`), once it leads."""
    runtime = await start_runtime(spec(settings))
    runtime.relay.stop()
    runtime.tasks[0].cancel()
    relay = kind(settings)
    relay_task = asyncio.create_task(relay.run())
    try:
        await wait_for(lambda: relay.is_leader, timeout=10)
        yield runtime, relay
    finally:
        relay.stop()
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        await stop_runtime(runtime)


async def test_an_idle_relay_backs_off_its_poll_and_a_commit_still_goes_out_at_once(make_settings):
    """Each poll walks the rows of a transaction still open (a city import's 400 k), so an idle relay polls less and
    less; NOTIFY still wakes it at the commit."""
    settings = make_settings(KitSettings, relay_poll_seconds=0.1, relay_idle_max_seconds=120.0)
    async with counting_relay(settings) as (runtime, relay):
        pool = runtime.pool
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await add_events(conn, [item("open", seq) for seq in range(20)])
            reads_before = relay.reads
            await asyncio.sleep(13.0)
            # Polled every 0.1 s this would be ~130 reads; backing off (0.1, 0.2, 0.4, ... 6.4 s) it is 8. The relay
            # is now in a wait of 12.8 s.
            assert relay.reads - reads_before <= 12
            await tx.commit()
        # NOTIFY, not the poll (due ~12 s from now), wakes it.
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 20 FROM applied"), timeout=9)


async def test_a_commit_costs_the_relay_one_read_when_it_fits_in_a_batch(make_settings):
    """A read shorter than the batch took every committed row: the relay confirms it and waits for the next NOTIFY
    instead of reading again (outreach's relay woke ~4 times a second in the bench, each time with a second, empty
    read). What commits meanwhile still wakes it."""
    settings = make_settings(KitSettings, relay_poll_seconds=60.0, relay_batch_size=50)
    async with counting_relay(settings) as (runtime, relay):
        pool = runtime.pool
        await wait_for(lambda: relay.reads >= 1, timeout=10)  # its first read found nothing: it waits for NOTIFY
        for n in (1, 2, 3):
            reads_before = relay.reads
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, [item(f"c{n}", seq) for seq in range(20)])
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=10)
            await asyncio.sleep(0.3)  # any further read would have happened by now
            assert relay.reads - reads_before == 1
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 60 FROM applied"), timeout=10)


class AcksHeld(CountingReads):
    """The stock relay, to which Kafka's acknowledgements of its first batch arrive only when the test lets them."""

    def __init__(self, settings: KitSettings) -> None:
        super().__init__(settings)
        self.release = asyncio.Event()
        self.sent: list[list[int]] = []

    async def send_batch(self, conn: asyncpg.Connection, producer: AIOKafkaProducer, exclude: list[int]) -> Any:
        batch = await super().send_batch(conn, producer, exclude)
        if batch is not None:
            self.sent.append(batch.ids)
            if len(self.sent) == 1:
                batch.acks = [asyncio.ensure_future(self._held(ack)) for ack in batch.acks]
        return batch

    async def _held(self, ack: asyncio.Future[Any]) -> Any:
        await self.release.wait()
        return await ack


async def test_a_commit_is_sent_while_the_previous_batch_awaits_its_acks(make_settings):
    """Rows committed while Kafka acknowledges the relay's last batch are read and sent at once, not after those
    acks and that batch's delete (two round trips that, on a busy machine, took as long as the read and send)."""
    settings = make_settings(KitSettings, relay_poll_seconds=60.0)
    async with counting_relay(settings, AcksHeld) as (runtime, relay):
        pool = runtime.pool
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item("h", 0)])
        await wait_for(lambda: len(relay.sent) == 1, timeout=10)
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item("h", 1)])
        # The first batch's acks are held until the release below: a relay that waited for them never sends this one
        # (the bound is only how long a loaded CI machine may take to wake the relay and read the row).
        await wait_for(lambda: len(relay.sent) == 2, timeout=20)
        assert await pool.fetchval("SELECT count(*) FROM outbox") == 2  # nothing is deleted before its ack
        relay.release.set()
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=10)
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM applied"), timeout=30)
        assert [(r["item_id"], r["seq"]) for r in await applied_rows(pool)] == [("h", 0), ("h", 1)]


class CommitsHeld(InboxConsumer):
    """The kit's consumer, whose offset commits reach Kafka only when the test lets them (a slow coordinator)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.release = asyncio.Event()

    async def _loop(self, consumer: Any, dlt: AIOKafkaProducer) -> None:
        commit = consumer.commit

        async def held(offsets: Any = None) -> None:
            await self.release.wait()
            await commit(offsets)

        consumer.commit = held
        await super()._loop(consumer, dlt)


async def test_the_next_poll_is_applied_while_the_last_polls_offsets_are_committed(make_settings):
    """An offset commit is a round trip to the group's coordinator: an event that arrives meanwhile is applied without
    waiting for it, and the offsets still reach Kafka once the coordinator answers."""
    settings = make_settings(KitSettings, topic_partitions=1)
    runtime = await start_runtime(ServiceSpec(settings=settings, migrations=spec(settings).migrations, topics=[TOPIC]))
    consumer = CommitsHeld(
        settings, runtime.pool, "kittest.items", Batch(frozenset({"kittest.item.added.v1"}), on_items_added)
    )
    task = asyncio.create_task(consumer.run())
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        pool = runtime.pool
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item("c", 0)])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 1 FROM applied"), timeout=30)
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item("c", 1)])
        # The first poll's commit is held: the second event is applied all the same.
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM applied"), timeout=10)

        async def committed() -> int:
            offsets = await admin.list_consumer_group_offsets(settings.topic_prefix + "kittest.items")
            return sum(o.offset for o in offsets.values())

        async def committed_both() -> bool:
            return await committed() == 2

        assert not await committed_both()
        consumer.release.set()
        await wait_for(committed_both, timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await admin.close()
        await stop_runtime(runtime)


def own_run(make_settings: Any, run: str, **overrides: int) -> KitSettings:
    """Settings with topics, a group and a schema of the run's own: a group joined again at once can wait for its old
    member's session to time out."""
    base = make_settings(KitSettings)
    return make_settings(
        KitSettings, topic_prefix=f"{base.topic_prefix}{run}.", db_schema=f"{base.db_schema}_{run}", **overrides
    )


async def trickle_and_count_polls(make_settings: Any, run: str, **fetch: int) -> list[int]:
    """100 events committed one at a time, 10 ms apart, to a consumer of one partition: the sizes of its polls (each
    run on its own topics, group and schema)."""
    settings = own_run(make_settings, run, topic_partitions=1, **fetch)
    runtime = await start_runtime(ServiceSpec(settings=settings, migrations=spec(settings).migrations, topics=[TOPIC]))
    consumer = InboxConsumer(
        settings, runtime.pool, "kittest.items", Batch(frozenset({"kittest.item.added.v1"}), on_items_added)
    )
    task = asyncio.create_task(consumer.run())
    try:
        await wait_for(lambda: consumer.running, timeout=30)
        BATCH_SIZES.clear()
        for i in range(100):
            async with runtime.pool.acquire() as conn, conn.transaction():
                await add_events(conn, [item(f"i{i}", i)])
            await asyncio.sleep(0.01)
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 100 FROM applied"), timeout=30)
        return list(BATCH_SIZES)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stop_runtime(runtime)


async def test_a_group_that_may_wait_applies_trickling_events_in_a_few_large_polls(make_settings):
    """With `consumer_fetch_min_bytes` (reporting's projection) the broker holds each fetch until that much is there
    (or the wait passed): events that come one by one are applied a few dozen at a time, in a few transactions,
    where a group that reacts at once (the default) applies nearly every one alone."""
    waiting = await trickle_and_count_polls(
        make_settings, "wait", consumer_fetch_min_bytes=16 * 1024, consumer_fetch_max_wait_ms=2000
    )
    assert sum(waiting) == 100
    assert len(waiting) <= 8, waiting  # ~550 bytes an event: a poll of about 30 events or more
    at_once = await trickle_and_count_polls(make_settings, "now")
    assert sum(at_once) == 100
    assert len(at_once) >= 3 * len(waiting), (at_once, waiting)


@contextlib.asynccontextmanager
async def behind_on_one_key(
    settings: KitSettings, events: int, apply: Any
) -> AsyncIterator[tuple[Runtime, InboxConsumer, asyncio.Task[None]]]:
    """A group started behind: `events` of one key (one partition) on Kafka before it starts, applied by `apply`
    as a `Batch`; the runtime, the consumer and its task, cancelled afterwards."""
    runtime = await start_runtime(ServiceSpec(settings=settings, migrations=spec(settings).migrations, topics=[TOPIC]))
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_events(conn, [item("hot", i) for i in range(events)])
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=60)
        consumer = InboxConsumer(
            settings, runtime.pool, "kittest.items", Batch(frozenset({"kittest.item.added.v1"}), apply)
        )
        task = asyncio.create_task(consumer.run())
        try:
            yield runtime, consumer, task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await stop_runtime(runtime)


async def test_a_group_that_may_wait_takes_a_backlog_in_one_partition_without_waiting(make_settings):
    """A group that may wait for `consumer_fetch_min_bytes` must not wait when the backlog sits in one partition:
    a fetch takes at most one partition's share of the buffer from it, so a broker told to wait for more held every
    poll of such a backlog for the whole `consumer_fetch_max_wait_ms` (reporting applied a launch's assignments, one
    topic, at a fifth of its speed). 3,000 events of one key (one partition of 16, ~1.6 MB) against a 1 MiB buffer
    (64 KiB a partition): at a 10 s wait per poll of ~120 events they would take minutes; here they take seconds."""
    settings = own_run(
        make_settings,
        "backlog",
        topic_partitions=16,
        consumer_fetch_buffer_bytes=1024 * 1024,
        consumer_fetch_min_bytes=1024 * 1024,
        consumer_fetch_max_wait_ms=10_000,
    )
    async with behind_on_one_key(settings, 3000, on_items_added) as (runtime, _, _):
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 3000 FROM applied"), timeout=40)


async def test_a_group_behind_on_one_partition_never_waits_for_its_idle_ones(make_settings):
    """aiokafka sends one fetch per broker at a time. While a poll slower than its prefetch backoff (100 ms) still
    holds a busy partition's records, it fetches the group's idle partitions alone, and the broker holds that fetch
    for `consumer_fetch_max_wait_ms`; the busy partition, drained meanwhile, waits for it to come back. The kit's
    wait (100 ms) is half the consumer's own poll (200 ms), so a group catching up never polls empty and never
    calls itself caught up (`idle`, which reporting's refresher reads) while its backlog lasts. At 500 ms, outreach's
    directory copy stood idle about 40 % of its time; so does this test's group (4,000 events of one key, 8
    partitions, a 128 KiB fetch a partition, 150 ms a poll)."""
    settings = own_run(make_settings, "idleparts", topic_partitions=8, consumer_fetch_buffer_bytes=1024 * 1024)
    assert settings.consumer_fetch_max_wait_ms == 100  # the default under test, not this test's own

    async def slow(conn: asyncpg.Connection, events: list[Any]) -> None:
        await asyncio.sleep(0.15)
        await on_items_added(conn, events)

    empty_while_behind = 0
    async with behind_on_one_key(settings, 4000, slow) as (runtime, consumer, task):
        await wait_for(lambda: consumer.applied > 0, timeout=30)
        while consumer.applied < 4000:
            assert not task.done(), task
            empty_while_behind += consumer.idle
            await asyncio.sleep(0.01)
        assert await runtime.pool.fetchval("SELECT count(*) FROM applied") == 4000
    assert empty_while_behind == 0, f"idle in {empty_while_behind} samples of 10 ms while behind"
