"""Kit throughput on this machine, with the raw Kafka rates of the same run for ratios.

Prints: raw aiokafka produce/consume rates for 1 KB messages; the relay draining a 100,000-row outbox;
the inbox consumer's apply rate (one insert per event); one-hop latency outbox commit → consumer commit
at 500 events/s. Run: .venv/bin/python bench/kit_throughput.py [--events 100000]
`--relay-only` stops after the relay and adds the CPU it cost: the relay (this process) and PostgreSQL (all its
backends) per event, steadier than the rates on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.procs import tree_cpu
from shared import db, kafka
from shared.devstack import ensure_up
from shared.devstack.stack import components
from shared.events import Event, Payload, event_type, occurred_at
from shared.inbox import InboxConsumer
from shared.outbox import add_events
from shared.relay import Relay
from shared.settings import ServiceSettings

TOPIC = "kitbench.blob.events"
PAD = "x" * 800  # envelope + payload ≈ 1 KB, like the raw messages


class BenchSettings(ServiceSettings):
    service_name: ClassVar[str] = "kitbench"


@event_type("kitbench.blob.added.v1", topic=TOPIC, key="blob_id")
class BlobAdded(Payload):
    """A ~1 KB bench event."""

    blob_id: str
    n: int
    pad: str
    occurred_at: datetime


MIGRATIONS = Path(__file__).parent / "kit_migrations"


def blob(n: int) -> BlobAdded:
    return BlobAdded(blob_id=f"b{n % 1000}", n=n, pad=PAD, occurred_at=occurred_at())


async def raw_produce(bootstrap: str, topic: str, n: int) -> float:
    producer = kafka.producer(bootstrap, client_id="bench-raw")
    await producer.start()
    value = b"y" * 1024
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=value, key=str(i % 1000).encode()) for i in range(n)]
        await asyncio.gather(*futures)
        return n / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=16 << 20,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(6)]  # created above with 6 partitions
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got = 0
        started = time.perf_counter()
        while got < n:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                got += len(records)
        return got / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def writer(schema: str, prefix: str, rate: int, total: int) -> None:
    """A separate process committing one event per transaction at `rate`/s, with its own relay."""
    stack = ensure_up()
    s = BenchSettings(
        database_url=stack.database_url,
        kafka_bootstrap_servers=stack.kafka_bootstrap,
        db_schema=schema,
        topic_prefix=prefix,
    )
    pool = await db.create_pool(s.database_url, s.db_schema, max_size=2)
    relay = Relay(s)
    relay_task = asyncio.create_task(relay.run())
    t0 = time.perf_counter()
    for i in range(total):
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, [BlobAdded(blob_id=f"lat{i}", n=i, pad=PAD, occurred_at=occurred_at())])
            # The key carries the commit time so the consumer can measure the hop (Kafka keys stay per blob).
            await conn.execute(
                "UPDATE outbox SET key = $1 WHERE id = (SELECT max(id) FROM outbox)", f"lat{i}:{time.time()}"
            )
        delay = t0 + (i + 1) / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
    while relay.published < total:
        await asyncio.sleep(0.05)
    relay.stop()
    relay_task.cancel()
    await pool.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--latency-seconds", type=int, default=20)
    ap.add_argument("--relay-only", action="store_true", help="stop after the relay, with its CPU per event")
    ap.add_argument("--writer", nargs=4, metavar=("SCHEMA", "PREFIX", "RATE", "TOTAL"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.writer:
        schema, prefix, rate, total = args.writer
        await writer(schema, prefix, int(rate), int(total))
        return
    stack = ensure_up()
    run = uuid.uuid4().hex[:8]
    s = BenchSettings(
        database_url=stack.database_url,
        kafka_bootstrap_servers=stack.kafka_bootstrap,
        db_schema=f"bench_{run}",
        topic_prefix=f"bench{run}.",
        relay_batch_size=2000,
        consumer_batch_size=2000,
        db_pool_max=4,
    )
    n = args.events
    raw_topic = f"bench{run}.raw"
    await kafka.ensure_topics(
        stack.kafka_bootstrap, [kafka.TopicSpec(raw_topic, 6), kafka.TopicSpec(s.topic(TOPIC), 6)]
    )
    pool = await db.create_pool(s.database_url, s.db_schema, max_size=4)
    await db.migrate(s.database_url, s.db_schema, db.KIT_MIGRATIONS, MIGRATIONS)

    produce_rate = await raw_produce(stack.kafka_bootstrap, raw_topic, n)
    consume_rate = 0.0 if args.relay_only else await raw_consume(stack.kafka_bootstrap, raw_topic, n)

    # Relay: fill the outbox with n committed rows, then time the drain.
    for start in range(0, n, 5000):
        async with pool.acquire() as conn, conn.transaction():
            await add_events(conn, [blob(i) for i in range(start, min(n, start + 5000))])
    relay = Relay(s)
    pg = next((c.pid() for c in components() if c.name == "postgres"), None)
    pg_cpu, own_cpu = tree_cpu(pg) if pg else 0.0, time.process_time()
    started = time.perf_counter()
    relay_task = asyncio.create_task(relay.run())
    while relay.published < n:
        await asyncio.sleep(0.05)
    relay_rate = n / (time.perf_counter() - started)
    own_cpu, pg_cpu = time.process_time() - own_cpu, (tree_cpu(pg) if pg else 0.0) - pg_cpu
    if args.relay_only:
        relay.stop()
        relay_task.cancel()
        await pool.close()
        print(
            f"raw produce {produce_rate:,.0f} msg/s; relay {relay_rate:,.0f} events/s = {relay_rate / produce_rate:.2f}"
            f" x raw produce; CPU per event: relay {own_cpu / n * 1e6:.0f} µs, PostgreSQL {pg_cpu / n * 1e6:.0f} µs"
        )
        return

    # Inbox: apply the n published events with a one-insert handler.
    async def one_insert(conn: Any, event: Event[BlobAdded]) -> None:
        # The latency group re-applies the backlog the first group stored: no conflict error, still one insert.
        await conn.execute(
            "INSERT INTO blobs (event_id, n) VALUES ($1, $2) ON CONFLICT DO NOTHING", event.envelope.id, event.payload.n
        )

    consumer = InboxConsumer(s, pool, "kitbench.apply", {"kitbench.blob.added.v1": one_insert})
    started = time.perf_counter()
    consumer_task = asyncio.create_task(consumer.run())
    while consumer.applied < n:
        await asyncio.sleep(0.05)
    inbox_rate = n / (time.perf_counter() - started)

    # One hop at a steady 500 events/s: a writer process commits events (its relay publishes them) and this
    # process's consumer notes when each event's transaction committed; both read the same wall clock.
    lat_group = "kitbench.latency"
    latencies: list[float] = []

    async def timed(records: Any, dlt: Any) -> None:
        await original(records, dlt)
        now = time.time()
        for r in records:
            _, _, sent = r.key.decode().partition(":")
            if sent:
                latencies.append((now - float(sent)) * 1000)

    rate, total = 500, 500 * args.latency_seconds
    relay.stop()
    relay_task.cancel()
    consumer_task.cancel()
    lat_consumer = InboxConsumer(s, pool, lat_group, {"kitbench.blob.added.v1": one_insert})
    original = lat_consumer._process
    lat_consumer._process = timed  # type: ignore[method-assign]
    lat_task = asyncio.create_task(lat_consumer.run())
    await lat_consumer.ready.wait()
    while lat_consumer.applied < n:  # the group starts from the beginning: skip past the backlog first
        await asyncio.sleep(0.05)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--writer", s.db_schema, s.topic_prefix, str(rate), str(total)
    )
    await proc.wait()
    while len(latencies) < total:
        await asyncio.sleep(0.05)
    lat = sorted(latencies)
    p50 = statistics.median(lat)
    p99 = lat[int(len(lat) * 0.99) - 1]
    lat_task.cancel()

    await pool.close()
    print(f"events per run: {n:,} (1 KB), PostgreSQL + Kafka on this machine")
    print(f"raw aiokafka produce (acks=all, idempotent): {produce_rate:10,.0f} msg/s")
    print(f"raw aiokafka consume:                        {consume_rate:10,.0f} msg/s")
    print(
        f"relay draining the outbox backlog:           {relay_rate:10,.0f} events/s"
        f"  = {relay_rate / produce_rate:.2f} x raw produce  (target ≥ 20,000)"
    )
    print(
        f"inbox consumer applying (1 insert/event):    {inbox_rate:10,.0f} events/s"
        f"  = {inbox_rate / consume_rate:.2f} x raw consume  (target ≥ 5,000)"
    )
    print(
        f"one hop outbox commit → consumer commit at {rate}/s: p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        "  (target p99 ≤ 100 ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
