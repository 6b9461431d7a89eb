"""Rebuild every read model by replaying all topics from offset 0 into a fresh schema, then swap it in.

`python -m services.reporting.usecases.rebuild [--no-swap] [--drop-old]`

The replay uses the same projection (domain.projection) and the same fact merges (store.facts) as the live
consumer, but in bulk: a few thousand events per transaction, set-based merges, no inbox (the merges are
idempotent), offsets kept in the rebuilt schema's `rebuild_offsets`. The partitions are split between
`rebuild_processes` processes (this one and forked lanes, each with its own consumer and connections): the merges
are order-independent and take their row locks in key order, so lanes merging the same rows give what one would.
Then one full refresh. The swap takes
a lock that pauses the live consumer, replays the tail up to the current end of every partition, and renames
the schemas in one transaction, so readers never see a half-built model.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import multiprocessing
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import TypeAdapter, ValidationError

from services.reporting.domain.projection import PROJECTIONS, UNUSED, USED, Op, project
from services.reporting.handlers import handlers
from services.reporting.settings import ReportingSettings
from services.reporting.store import schemas
from services.reporting.store.facts import upsert_facts
from services.reporting.store.refresh import update_figures
from shared import db, kafka
from shared.events import lean_envelope, registry
from shared.relay import TYPE_HEADER
from shared.runner import collector_policy

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parents[1] / "migrations"


@dataclass
class Stats:
    """What a replay did."""

    events: int = 0
    skipped: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # this process's CPU during the replay (decoding, Kafka fetches, the merges' encoding)
    refresh_seconds: float = 0.0
    tail_events: int = 0
    processes: int = 1  # how many processes replayed the partitions
    schema: str = ""
    old_schema: str | None = None
    positions: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


_UNUSED_HINTS = frozenset(t.encode() for t in UNUSED)


@functools.cache
def _lean_envelopes() -> dict[bytes, tuple[str, TypeAdapter[dict[str, Any]]]]:
    handlers()  # make sure the contracts are registered
    return {t.encode(): (t, lean_envelope(registry.spec(t).model)) for t in USED}


class Fields(dict[str, Any]):
    """A payload validated to plain dicts (`lean_envelope`: the contract's checks and defaults, lists of nested
    objects as models), read by attribute as the projection reads the payload model: no model is built per event.
    An attribute is the dict's item (a C call: a `__getattr__` fallback cost ~2 µs per attribute read)."""

    __slots__ = ()
    __getattribute__ = dict.__getitem__


def topics(settings: ReportingSettings) -> list[str]:
    """Physical names of every topic the projection reads (the live group's, `handlers()`)."""
    return [settings.topic(t) for t in registry.topics_for(sorted(handlers().types))]


def _lean_ops(type_: str, adapter: TypeAdapter[dict[str, Any]], value: bytes) -> list[Op] | None:
    """The operations of a record its header says is of `type_`; None unless its envelope is valid and says so."""
    try:
        env = adapter.validate_json(value)
    except ValidationError:
        return None
    return PROJECTIONS[type_](Fields(env["data"])) if env["type"] == type_ else None


def decode(records: list[ConsumerRecord]) -> tuple[list[Op], int]:
    """Contract-validated operations of a batch of records, and how many records were unusable.

    A record whose `hss-event-type` header (the relay sets it) names a type no indicator needs is not parsed at
    all, and one naming a projected type is parsed in one pass, envelope and payload together, to plain dicts with
    the contract's checks and defaults (`lean_envelope`: no envelope or payload model is built; the projection reads
    the payload through `Fields`); records without the header, or whose envelope says another type, take the general
    way.
    """
    ops: list[Op] = []
    skipped = 0
    lean = _lean_envelopes()
    for rec in records:
        hinted = None
        for k, v in rec.headers or ():  # a loop, not next(genexpr): no generator per record (~7 % of a lane)
            if k == TYPE_HEADER:
                hinted = v
                break
        if hinted is not None:
            if hinted in _UNUSED_HINTS:
                continue
            known = lean.get(hinted)
            if known is not None and (done := _lean_ops(*known, rec.value or b"")) is not None:
                ops.extend(done)
                continue
        try:
            env_dict = orjson.loads(rec.value or b"")
            type_ = env_dict["type"]
            if type_ not in PROJECTIONS:
                skipped += 1
                continue
            if type_ in UNUSED:
                continue
            payload = registry.spec(type_).model.model_validate(env_dict["data"])
        except (orjson.JSONDecodeError, ValidationError, KeyError, TypeError):
            skipped += 1  # the live consumer dead-letters these; a rebuild cannot apply them either
            continue
        ops.extend(project(type_, payload))
    return ops, skipped


async def _assign(consumer: AIOKafkaConsumer, names: list[str]) -> list[TopicPartition]:
    tps = await kafka.partitions(consumer, names)
    consumer.assign(tps)
    return tps


async def replay(
    settings: ReportingSettings,
    pool: asyncpg.Pool,
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    stats: Stats,
    *,
    track: bool,
    max_records: int = 5000,
) -> None:
    """Apply every record from the current positions up to the partitions' current ends."""
    end = await consumer.end_offsets(tps)
    pending: asyncio.Task[None] | None = None

    async def apply(ops: list[Op], positions: dict[tuple[str, int], int]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await upsert_facts(conn, ops, track=track)
            await schemas.upsert_rebuild_offsets(conn, positions)

    try:
        while True:
            todo = [tp for tp in tps if (await consumer.position(tp)) < end[tp]]
            if not todo:
                break
            batch = await consumer.getmany(*todo, timeout_ms=500, max_records=max_records)
            records: list[ConsumerRecord] = []
            for tp, rs in batch.items():  # up to the end read before: filtered per partition, not per record
                last = end[tp]
                records.extend(rs if not rs or rs[-1].offset < last else [r for r in rs if r.offset < last])
            if not records:
                continue
            ops, skipped = decode(records)
            positions = {(tp.topic, tp.partition): rs[-1].offset + 1 for tp, rs in batch.items()}
            if pending is not None:
                await pending  # decoding this batch overlapped with the database applying the previous one
            pending = asyncio.create_task(apply(ops, positions))
            stats.events += len(records)
            stats.skipped += skipped
            stats.positions.update(positions)
        if pending is not None:
            await pending
            pending = None
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending


def lanes(sizes: dict[TopicPartition, int], n: int) -> list[list[TopicPartition]]:
    """The partitions split into at most `n` lanes of about equal record counts (the largest partition first, each
    onto the lane with the fewest records so far); never more lanes than partitions with records."""
    out: list[list[TopicPartition]] = [[] for _ in range(max(1, min(n, sum(1 for c in sizes.values() if c))))]
    counts = [0] * len(out)
    for tp in sorted(sizes, key=lambda tp: (-sizes[tp], tp.topic, tp.partition)):
        i = counts.index(min(counts))
        out[i].append(tp)
        counts[i] += sizes[tp]
    return out


async def _pool(settings: ReportingSettings, target: str, max_size: int) -> asyncpg.Pool:
    # Its own pool: the kit's pools cap statements at 30 s, and a full refresh of a whole city can take longer.
    pool = await asyncpg.create_pool(
        settings.database_url,
        min_size=min(2, max_size),
        max_size=max_size,
        command_timeout=None,
        # A crash mid-rebuild means starting the rebuild again, so commits need not wait for the WAL flush.
        server_settings={
            **db.server_settings(target),
            "application_name": f"{settings.db_schema}-rebuild",
            "synchronous_commit": "off",
        },
    )
    assert pool is not None
    return pool


def _consumer(settings: ReportingSettings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )


async def _lane(settings: ReportingSettings, target: str, tps: list[TopicPartition]) -> dict[str, Any]:
    """A forked lane: replays `tps` from offset 0 into `target` with its own consumer and pool."""
    cpu = time.process_time()
    stats = Stats()
    pool = await _pool(settings, target, max_size=1)  # replay() applies one batch at a time
    consumer = _consumer(settings)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        await replay(settings, pool, consumer, tps, stats, track=False)
        ends = {(tp.topic, tp.partition): await consumer.position(tp) for tp in tps}
    finally:
        await consumer.stop()
        await pool.close()
    return {
        "events": stats.events,
        "skipped": stats.skipped,
        "cpu_seconds": time.process_time() - cpu,
        "ends": ends,
        "positions": stats.positions,
    }


def _lane_main(out: Connection, settings: ReportingSettings, target: str, tps: list[TopicPartition]) -> None:
    """A lane process's body (forked: the parent's event loop, sockets and objects are left untouched)."""
    try:
        out.send(("done", asyncio.run(_lane(settings, target, tps))))
    except BaseException:  # the parent raises it
        out.send(("failed", traceback.format_exc()))
    finally:
        out.close()


async def _receive(conn: Connection) -> Any:
    """A lane's answer, waited for in a worker thread (EOF if the lane died before answering)."""
    try:
        kind, value = await asyncio.to_thread(conn.recv)
    except EOFError:
        raise RuntimeError("a replay lane exited without an answer") from None
    if kind != "done":
        raise RuntimeError(f"a replay lane failed:\n{value}")
    return value


async def replay_split(
    settings: ReportingSettings,
    pool: asyncpg.Pool,
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    stats: Stats,
    target: str,
    processes: int,
) -> None:
    """The bulk replay of `tps` from offset 0 (no tracking) by up to `processes` processes: this one replays the
    first lane with `consumer`, forked lanes the others; then `consumer` holds every partition again at the end
    each lane reached (the swap replays the tail from there)."""
    begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
    split = lanes({tp: end[tp] - begin[tp] for tp in tps}, processes)
    stats.processes = len(split)
    log.info(
        "replaying %d partitions in %d process(es): %s records",
        len(tps),
        len(split),
        " / ".join(str(sum(end[tp] - begin[tp] for tp in lane)) for lane in split),
    )
    if len(split) == 1:
        await consumer.seek_to_beginning(*tps)
        await replay(settings, pool, consumer, tps, stats, track=False)
        return
    _lean_envelopes()  # built once here, inherited by the forked lanes (each built its own: ~0.2 s of CPU)
    ctx = multiprocessing.get_context("fork")
    forked: list[tuple[Any, Connection]] = []  # (a forked multiprocessing process, its answer's pipe)
    try:
        for lane in split[1:]:
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_lane_main, args=(send, settings, target, lane), daemon=True)
            proc.start()
            send.close()
            forked.append((proc, receive))
        mine = split[0]
        consumer.assign(mine)
        await consumer.seek_to_beginning(*mine)
        await replay(settings, pool, consumer, mine, stats, track=False)
        ends = {tp: await consumer.position(tp) for tp in mine}
        for _, receive in forked:
            done = await _receive(receive)
            stats.events += done["events"]
            stats.skipped += done["skipped"]
            stats.cpu_seconds += done["cpu_seconds"]
            stats.positions.update(done["positions"])
            ends.update({TopicPartition(*k): v for k, v in done["ends"].items()})
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, ends[tp])
    finally:
        for proc, receive in forked:
            if proc.is_alive():
                proc.kill()
            proc.join()
            receive.close()


async def rebuild(
    settings: ReportingSettings,
    *,
    swap: bool = True,
    drop_old: bool = False,
    target: str | None = None,
    processes: int | None = None,
) -> Stats:
    """Replay all topics into a fresh schema; with `swap`, make it the live one. The bulk replay's partitions are
    split between `processes` processes (default: the setting `rebuild_processes`)."""
    live = settings.db_schema
    target = target or f"{live}__rebuild"
    stats = Stats(schema=target)
    admin = await asyncpg.connect(settings.database_url)
    try:
        await schemas.delete_schema(admin, target, if_exists=True)
    finally:
        await admin.close()
    admin = await asyncpg.connect(settings.database_url)
    try:
        await schemas.insert_schema(admin, target)
    finally:
        await admin.close()
    pool = await _pool(settings, target, max_size=3)
    consumer = _consumer(settings)
    await consumer.start()
    try:
        await db.migrate(settings.database_url, target, db.KIT_MIGRATIONS, MIGRATIONS)
        tps = await _assign(consumer, topics(settings))
        started, cpu = time.perf_counter(), time.process_time()
        async with schemas.bulk_load(pool, target):
            if tps:
                n = settings.rebuild_processes if processes is None else processes
                await replay_split(settings, pool, consumer, tps, stats, target, n)
        stats.seconds = time.perf_counter() - started
        stats.cpu_seconds += time.process_time() - cpu  # and the forked lanes' CPU (replay_split)
        log.info("replayed %d events in %.1fs (%.0f/s); refreshing", stats.events, stats.seconds, stats.rate)
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await update_figures(conn, target, full=True)
        stats.refresh_seconds = time.perf_counter() - started
        if swap:
            stats.old_schema = await _swap(settings, pool, consumer, tps, stats, live, target, drop_old)
            stats.schema = live
    finally:
        await consumer.stop()
        await pool.close()
    return stats


async def _swap(
    settings: ReportingSettings,
    pool: asyncpg.Pool,
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    stats: Stats,
    live: str,
    target: str,
    drop_old: bool,
) -> str | None:
    """Pause the live consumers, replay the tail, rename the schemas in one transaction."""
    conn = await asyncpg.connect(settings.database_url)
    old = f"{live}__old_{int(time.time())}"
    try:
        async with conn.transaction():
            exists = await schemas.get_schema_exists(conn, live)
            if exists:
                # Nothing is applied live that the tail below does not hold.
                await schemas.update_inbox_paused(conn, live)
            before = stats.events
            await replay(settings, pool, consumer, tps, stats, track=True)
            stats.tail_events = stats.events - before
            async with pool.acquire() as rconn:
                await update_figures(rconn, target)
            if exists:
                await schemas.update_schema_name(conn, live, old)
            await schemas.update_schema_name(conn, target, live)
        if exists and drop_old:
            await schemas.delete_schema(conn, old)
            return None
        return old if exists else None
    finally:
        await conn.close()


def main() -> None:
    """CLI entry point."""
    p = argparse.ArgumentParser(description="Rebuild reporting's read models from the start of every topic.")
    p.add_argument("--no-swap", action="store_true", help="build into <schema>__rebuild and leave it there")
    p.add_argument("--drop-old", action="store_true", help="drop the replaced schema after the swap")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    # As a service process runs the collector: a replay allocates a model per event, and the default thresholds
    # made the cyclic collector walk the decoded batches over and over (a fifth of the replay's CPU).
    collector_policy()
    stats = asyncio.run(rebuild(ReportingSettings(), swap=not a.no_swap, drop_old=a.drop_old))
    out: dict[str, Any] = {
        "events": stats.events,
        "skipped": stats.skipped,
        "replay_seconds": round(stats.seconds, 2),
        "replay_cpu_seconds": round(stats.cpu_seconds, 2),
        "events_per_second": round(stats.rate),
        "refresh_seconds": round(stats.refresh_seconds, 2),
        "tail_events": stats.tail_events,
        "schema": stats.schema,
        "old_schema": stats.old_schema,
    }
    print(orjson.dumps(out).decode())


if __name__ == "__main__":
    main()
