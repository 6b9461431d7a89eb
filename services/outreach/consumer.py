"""The `outreach.findings` consumer: a poll's findings applied set-based in one transaction."""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.outreach.reaction import FINDING_TYPE, Reaction
from shared.db import DB_UNAVAILABLE
from shared.events import Event
from shared.inbox import InboxConsumer, Poison
from shared.metrics import EVENTS_CONSUMED, HANDLER_DURATION
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


class FindingsConsumer(InboxConsumer):
    """The findings consumer group, applying each lane of a poll set-based in one transaction (the kit's loop runs
    `consumer_parallelism` lanes concurrently and commits the poll's offsets once).

    The kit's InboxConsumer calls a handler per record (several round trips each); this subclass records the
    whole batch in the inbox with one statement and applies it with `Reaction.apply`. On any failure it falls
    back to the kit's own path (the same batch record by record, then each alone with retries and dead letters),
    which calls the same rules through `Reaction.on_finding`.
    """

    def __init__(self, settings: ServiceSettings, pool: asyncpg.Pool, group: str, reaction: Reaction) -> None:
        super().__init__(settings, pool, group, {FINDING_TYPE: reaction.on_finding})
        self.reaction = reaction

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
