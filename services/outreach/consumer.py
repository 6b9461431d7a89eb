"""The `outreach.findings` consumer: a poll's findings applied set-based in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from services.outreach.reaction import FINDING_TYPE, Reaction
from shared.db import DB_UNAVAILABLE
from shared.events import Event
from shared.inbox import InboxConsumer, Poison
from shared.metrics import EVENTS_CONSUMED, HANDLER_DURATION
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


class FindingsConsumer(InboxConsumer):
    """The findings consumer group, applying a partition's records set-based in one transaction.

    The kit's InboxConsumer calls a handler per record (several round trips each); this subclass records the
    whole batch in the inbox with one statement and applies it with `Reaction.apply`. On any failure it falls
    back to the kit's own path (the same batch record by record, then each alone with retries and dead letters),
    which calls the same rules through `Reaction.on_finding`.
    """

    def __init__(
        self, settings: ServiceSettings, pool: asyncpg.Pool, group: str, reaction: Reaction, *, parallelism: int = 2
    ) -> None:
        super().__init__(settings, pool, group, {FINDING_TYPE: reaction.on_finding})
        self.reaction = reaction
        self.parallelism = max(1, parallelism)

    async def _loop(self, consumer: AIOKafkaConsumer, dlt: AIOKafkaProducer) -> None:
        """Like the kit's loop, but a poll's partitions go into `parallelism` concurrent transactions (partition
        number modulo parallelism) and one offset commit, instead of one transaction and commit per partition.

        Each partition's records stay in order and in one transaction; partitions hold disjoint children (keyed by
        student id), so the concurrent transactions never wait on each other's case locks. The inbox makes a
        redelivery after a crash between the database commits and the offset commit harmless.
        """
        last_lag = 0.0
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=self.settings.consumer_batch_size)
            self.ready.set()
            if batches:
                lanes: list[list[ConsumerRecord]] = [[] for _ in range(self.parallelism)]
                for tp, records in sorted(batches.items(), key=lambda kv: kv[0].partition):
                    lanes[tp.partition % self.parallelism].extend(records)
                await asyncio.gather(*(self._process(lane, dlt) for lane in lanes if lane))
                with contextlib.suppress(Exception):  # a rebalance may revoke partitions: the inbox absorbs it
                    await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
            if time.monotonic() - last_lag > 2.0:
                await self._update_lag(consumer)
                last_lag = time.monotonic()

    async def _process(self, records: list[ConsumerRecord], dlt: AIOKafkaProducer) -> None:
        try:
            events = [self._parse(r) for r in records]
        except Poison:
            await super()._process(records, dlt)
            return
        started = time.perf_counter()
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                fresh = await self._claim(conn, [e for e in events if e is not None])
                await self.reaction.apply(conn, [e.payload for e in fresh])
        except DB_UNAVAILABLE:
            raise
        except Exception as exc:
            log.info("batch apply failed (%r); applying record by record", exc)
            await super()._process(records, dlt)
            return
        took = time.perf_counter() - started
        topic = self.logical_topics[0]
        for _ in fresh:
            HANDLER_DURATION.labels(self.service, self.group, FINDING_TYPE).observe(took / max(len(fresh), 1))
        EVENTS_CONSUMED.labels(self.service, self.group, topic, "applied").inc(len(fresh))
        EVENTS_CONSUMED.labels(self.service, self.group, topic, "duplicate").inc(len(records) - len(fresh))
        self.applied += len(fresh)

    async def _claim(self, conn: asyncpg.Connection, events: list[Event[Any]]) -> list[Event[Any]]:
        """Insert the batch's event ids into the inbox; the events not applied before, in order."""
        ids = [e.envelope.id for e in events]
        rows = await conn.fetch(
            "INSERT INTO inbox (consumer, event_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING"
            " RETURNING event_id",
            self.group,
            ids,
        )
        fresh_ids = {r["event_id"] for r in rows}
        out, taken = [], set()
        for e in events:
            if e.envelope.id in fresh_ids and e.envelope.id not in taken:
                taken.add(e.envelope.id)
                out.append(e)
        return out
