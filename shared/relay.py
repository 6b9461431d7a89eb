"""Outbox relay: publishes committed outbox rows to Kafka in order, exactly once in effect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared import db, kafka, tracing
from shared.db import lock_key
from shared.metrics import EVENTS_PUBLISHED, RELAY_LEADER
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

STRUCTURED_CONTENT_TYPE = b"application/cloudevents+json"
TYPE_HEADER = "hss-event-type"  # routing hint; not a CloudEvents attribute

# Every committed row in id order (a row is deleted once Kafka acknowledged it). No high-water mark: a lower id that
# commits late is still there and goes out with the next batch; a slow transaction never holds back the others (it
# only holds back where the walk starts, `LowerBound`).
# The plan must touch one batch of rows whatever the statistics say of the outbox, which swing from "empty" to a
# bulk write's backlog in one commit:
#   * the ids are picked first (an ordered walk of the primary key, stopped after the batch), the rows read after:
#     right after a bulk write (an import, a campaign launch) the statistics still say the outbox is small, and a plain
#     `ORDER BY id LIMIT` then read every unpublished row and sorted them, turning each envelope to text on the way
#     (0.55 s a batch with 41 k rows waiting; 50 ms this way);
#   * the rows are read by `id = ANY(the batch's ids)`, an index lookup, not by joining the ids with the outbox:
#     autovacuum takes the statistics of a drained outbox (0 rows in many pages: every estimate is then one row), and
#     the join became a nested loop scanning the whole outbox once per id (1.5 M rows for a 1,000-row batch; a
#     campaign launch's drain took 60 s and 18 s of PostgreSQL CPU instead of 5 s and 1.6 s).
# The rows in flight are left out with `NOT IN (subquery)`, which PostgreSQL hashes: `NOT (id = ANY($2))` compared
# each waiting row with every id in flight (4.1 s for the first batch with 60 k rows waiting; 16 ms this way).
# The walk starts after `$3`, a lower bound below which every row is gone for good (`LowerBound`).
FETCH = """
SELECT id, event_id, topic, key, type, envelope::text AS envelope, headers
FROM outbox
WHERE id = ANY(ARRAY(
    SELECT id FROM outbox
    WHERE id > $3 AND id NOT IN (SELECT unnest($2::bigint[]))
    ORDER BY id LIMIT $1
))
ORDER BY id
"""

# Delete what Kafka acknowledged, and answer two facts for `LowerBound`: this transaction's id, and the oldest
# transaction still running when the statement's snapshot was taken (every one below it had ended).
DELETE = """
WITH published AS (DELETE FROM outbox WHERE id = ANY($1::bigint[]))
SELECT pg_current_xact_id()::text::bigint AS xid, pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon
"""


class LowerBound:
    """Where the relay's walk of the outbox may start: no row with an id at or below `after` will ever be read again.

    A published row is deleted, but its index entry and heap tuple stay until no snapshot in the database is older
    than the delete (autovacuum's ANALYZE keeps one for seconds); a walk from the lowest id steps over every one of
    them on each read. "After the last id sent" is not safe: ids are taken when a row is inserted, not when it
    commits, so a transaction holding a lower id may commit after a higher one was sent and deleted. The bound moves
    on PostgreSQL's own facts instead:

    * every outbox id is taken by a transaction that already has its transaction id (shared migration 007), and ids
      are handed out in order (sequence cache 1). So when the relay's delete runs in transaction D, every transaction
      that took an id at or below the highest id the relay had read before it (C) has a transaction id below D.
    * once a later statement's snapshot has `pg_snapshot_xmin` above D, every one of those transactions has ended:
      no row with an id at or below C can commit any more.
    * the next read, whose snapshot is later still, then sees every committed row up to C that is not yet deleted;
      when it returned fewer rows than its limit it took them all (or they are in flight), so the walk may start
      after C from then on. A full read covered only up to its last id.

    Rows in flight whose acknowledgement fails end the relay's session, and a new session starts from 0. The facts
    are cluster-wide (transaction ids are), so a long writing transaction in any database holds the bound back; a
    snapshot without a transaction id (ANALYZE, a read-only report) does not, and that is what keeps deleted rows.
    """

    KEEP = 64  # facts waiting for the horizon; beyond this the newest replaces the last (later, never wrong)

    def __init__(self) -> None:
        self.after = 0
        self._seen = 0  # the highest id read
        self._settled = 0  # every transaction that took an id at or below this has ended
        self._waiting: deque[tuple[int, int]] = deque()  # (a delete's transaction id, the highest id read before it)

    def read(self, ids: Sequence[int], limit: int) -> None:
        """A read that walked from `after` (with a snapshot later than every fact `deleted` gave) returned `ids`."""
        if ids:
            self._seen = max(self._seen, ids[-1])
        covered = ids[-1] if len(ids) >= limit else self._settled
        self.after = max(self.after, min(self._settled, covered))

    def deleted(self, xid: int, horizon: int) -> None:
        """The relay's delete ran in transaction `xid`; its snapshot's oldest running transaction was `horizon`."""
        while self._waiting and self._waiting[0][0] < horizon:
            self._settled = max(self._settled, self._waiting.popleft()[1])
        if self._seen > max(self._settled, self._waiting[-1][1] if self._waiting else 0):
            if len(self._waiting) >= self.KEEP:
                self._waiting.pop()
            self._waiting.append((xid, self._seen))


class AcksTimedOut(Exception):
    """Kafka did not acknowledge a sent batch in time (broker down or unreachable)."""


@dataclass
class _Batch:
    """Rows sent to Kafka whose acknowledgements are pending."""

    ids: list[int]
    topics: list[str]
    acks: list[asyncio.Future[Any]]
    spans: list[Any]  # one `send <topic>` span per row when tracing is on, ended at the ack
    deadline: float  # the loop's time by which Kafka must have acknowledged it (`relay_ack_timeout_seconds`)


class Relay:
    """One per service process; an advisory lock lets only one replica publish at a time."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.channel = f"outbox_{settings.db_schema}"
        self._wake = asyncio.Event()
        self._runs_on: asyncio.AbstractEventLoop | None = None  # the loop `run` runs on (its own thread in a service)
        self._stopping = False
        self.is_leader = False
        self.published = 0
        self.last_publish_at: float | None = None  # wall clock of the last acknowledged batch
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self._partitions: dict[str, list[int]] = {}
        self.bound = LowerBound()
        self._tracer = tracing.tracer(self.service)  # None when tracing is off: rows go out with their stored headers
        RELAY_LEADER.labels(self.service).set(0)  # standbys report 0 rather than nothing

    def health(self) -> dict[str, Any]:
        """Role, last successful publish and last error, for /healthz."""
        return {
            "role": "leader" if self.is_leader else "standby",
            "published": self.published,
            "last_publish_at": _iso(self.last_publish_at),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
        }

    async def run(self) -> None:
        """Publish until cancelled; reconnects with backoff when PostgreSQL or Kafka is down.

        Rows are marked published only after Kafka acknowledged them, so an interruption anywhere only re-sends
        the unmarked rows, from the lowest id up, in order (consumers drop the duplicates by event id).
        """
        self._runs_on = asyncio.get_running_loop()
        backoff = 0.2
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            producer: AIOKafkaProducer | None = None
            try:
                conn = await db.connect(
                    self.settings.database_url,
                    self.settings.db_schema,
                    keepalive_seconds=self.settings.relay_lock_keepalive_seconds,
                )
                # The relay's statements want the waiting rows in id order from the primary key, a batch at a time.
                # Right after a bulk write the statistics still say the outbox is small and the planner reads every
                # waiting row through a bitmap scan and sorts them (67-104 ms a batch with 40 k waiting, 0.4-4 ms
                # for the same ids this way). This session only ever reads a batch at a time.
                await conn.execute("SET enable_bitmapscan = off")
                await self._become_leader(conn)
                await conn.add_listener(self.channel, lambda *_: self._wake.set())
                producer = kafka.producer(self.settings.kafka_bootstrap_servers, client_id=f"{self.service}-relay")
                await producer.start()
                self._partitions.clear()  # partitions may have been added while we were away
                backoff = 0.2
                await self._loop(conn, producer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error, self.last_error_at = f"{type(exc).__name__}: {exc}"[:500], time.time()
                log.warning("relay interrupted, retrying in %.1fs: %r", backoff, exc)
                await self._release(conn, producer)
                conn = producer = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                await self._release(conn, producer)

    async def _release(self, conn: asyncpg.Connection | None, producer: AIOKafkaProducer | None) -> None:
        """Give up the leadership: close the producer (never waiting on an absent broker) and the lock connection."""
        if self.is_leader:
            self.is_leader = False
            RELAY_LEADER.labels(self.service).set(0)
        if producer is not None:
            await kafka.close_producer(producer)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    async def _become_leader(self, conn: asyncpg.Connection) -> None:
        """Wait until this replica holds the relay lock (released when its connection ends)."""
        key = lock_key(f"relay:{self.settings.db_schema}")
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            await asyncio.sleep(self.settings.relay_poll_seconds)
        self.is_leader = True
        RELAY_LEADER.labels(self.service).set(1)

    async def _loop(self, conn: asyncpg.Connection, producer: AIOKafkaProducer) -> None:
        """Drain the backlog with one batch in flight while the next is read; then wait for NOTIFY or a poll."""
        inflight: _Batch | None = None
        idle = self.settings.relay_poll_seconds
        self.bound = LowerBound()  # a new session proves its bound anew (rows in flight may not have gone out)
        while not self._stopping:
            self._wake.clear()
            # Read and send the next batch while Kafka acknowledges the previous one: sends stay in id order.
            batch = await self.send_batch(conn, producer, exclude=inflight.ids if inflight else [])
            if inflight is not None:
                await self.confirm(conn, inflight)
            inflight = batch
            if inflight is not None:
                idle = self.settings.relay_poll_seconds
                if len(inflight.ids) < self.settings.relay_batch_size and not await self._woken_before(inflight):
                    # The read took every committed row and no commit since woke us: a read now would find nothing.
                    # Confirm and read again only when woken (one statement less per wake).
                    await self.confirm(conn, inflight)
                    inflight = None
                    if not self._wake.is_set():
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), idle)
                # Woken while Kafka acknowledges a batch: the next read and send go first, the batch is confirmed
                # after them (above), as in a backlog. A commit's rows never wait for the previous batch's acks and
                # delete, which under load cost as much as the read and send themselves.
            else:
                # Nothing waiting. Each commit's NOTIFY wakes the relay at once (one set after `clear()` above ends
                # this wait); the poll is only a safety net, and while a bulk transaction is open each poll walks
                # its uncommitted rows, so it backs off while it finds nothing.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle)
                idle = min(idle * 2, max(self.settings.relay_idle_max_seconds, self.settings.relay_poll_seconds))
        if inflight is not None:
            await self.confirm(conn, inflight)

    async def _woken_before(self, batch: _Batch) -> bool:
        """Wait until Kafka acknowledged every record batch of `batch` or a commit woke the relay, whichever comes
        first (at most the ack timeout): True when woken while acks are still pending."""
        pending = {ack for ack in batch.acks if not ack.done()}
        if not pending or self._wake.is_set():
            return bool(pending)
        woken = asyncio.ensure_future(self._wake.wait())
        try:  # `asyncio.wait` never cancels what it waits on: the acks stay for `confirm`
            while pending and not woken.done():
                timeout = batch.deadline - asyncio.get_running_loop().time()
                if timeout <= 0:
                    break
                done, _ = await asyncio.wait([*pending, woken], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                pending -= done
        finally:
            woken.cancel()
        return bool(pending) and self._wake.is_set()

    async def send_batch(
        self, conn: asyncpg.Connection, producer: AIOKafkaProducer, exclude: list[int]
    ) -> _Batch | None:
        """Send the next unpublished rows (not yet acknowledged ones excluded) without waiting for acks.

        Rows are packed into one record batch per partition (the producer's own key partitioner, so a key always
        lands on the same partition, in row order): far cheaper than one `send` per message.
        """
        rows = await conn.fetch(FETCH, self.settings.relay_batch_size, exclude, self.bound.after)
        ids = [r["id"] for r in rows]
        self.bound.read(ids, self.settings.relay_batch_size)
        if not rows:
            return None
        acks: list[asyncio.Future[Any]] = []
        spans: list[Any] = []
        open_batches: dict[tuple[str, int], Any] = {}
        for r in rows:
            topic, key, value = self.settings.topic(r["topic"]), r["key"].encode(), r["envelope"].encode()
            parts = self._partitions.get(topic)
            if parts is None:
                parts = self._partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = kafka.partition_of(key, parts)
            stored = r["headers"] or {}
            if self._tracer is not None:
                span = self._send_span(r, topic, partition)
                spans.append(span)
                stored = {**stored, "traceparent": tracing.traceparent_of(span)}
            headers = _headers(r["type"], stored)
            batch = open_batches.get((topic, partition))
            if batch is None or batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                if batch is not None:  # full: send it and start the next one
                    batch.close()
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                batch = open_batches[(topic, partition)] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    raise ValueError(f"outbox row {r['id']} is larger than a Kafka batch")
        for (topic, partition), batch in open_batches.items():
            batch.close()
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        deadline = asyncio.get_running_loop().time() + self.settings.relay_ack_timeout_seconds
        return _Batch(ids=ids, topics=[r["topic"] for r in rows], acks=acks, spans=spans, deadline=deadline)

    def _send_span(self, row: Any, topic: str, partition: int) -> Any:
        """A PRODUCER span for one row, child of the span it was written under (its stored `traceparent`)."""
        assert self._tracer is not None
        return self._tracer.start_span(
            f"send {row['topic']}",
            context=tracing.parent_from(row["headers"] or {}),
            kind=tracing.SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition),
                "messaging.message.id": str(row["event_id"]),
                "cloudevents.event_id": str(row["event_id"]),
                "cloudevents.event_type": row["type"],
            },
        )

    async def confirm(self, conn: asyncpg.Connection, batch: _Batch) -> None:
        """Wait for every ack of a batch (at most `relay_ack_timeout_seconds` after it was sent), then delete its rows.

        The idempotent producer retries an unreachable broker forever; without the timeout the relay would wait
        as long, and a broker that lost the batch would never be asked again.
        """
        try:
            if not all(ack.done() for ack in batch.acks):
                timeout = max(batch.deadline - asyncio.get_running_loop().time(), 0.0)
                await asyncio.wait_for(asyncio.gather(*batch.acks), timeout)
            for ack in batch.acks:
                ack.result()  # a failed send raises here
        except TimeoutError as exc:
            failure = AcksTimedOut(f"no acknowledgement for {len(batch.ids)} events within the ack timeout")
            for span in batch.spans:
                tracing.end_failed(span, failure)
            raise failure from exc
        except BaseException as exc:
            for span in batch.spans:
                tracing.end_failed(span, exc)
            raise
        for span in batch.spans:
            span.end()
        self.bound.deleted(*await self.mark_published(conn, batch.ids))
        for topic, n in Counter(batch.topics).items():
            EVENTS_PUBLISHED.labels(self.service, topic).inc(n)
        self.published += len(batch.ids)
        self.last_publish_at = time.time()

    async def mark_published(self, conn: asyncpg.Connection, ids: list[int]) -> tuple[int, int]:
        """Delete the rows Kafka acknowledged (a crash before this only causes duplicates): Kafka keeps them now.
        Answers the delete's transaction id and its snapshot's xmin (`LowerBound.deleted`)."""
        row = await conn.fetchrow(DELETE, ids)
        return int(row["xid"]), int(row["horizon"])

    def stop(self) -> None:
        """Ask the loop to finish after the current batch (from any thread: the relay may run on its own loop)."""
        self._stopping = True
        if self._runs_on is None:
            self._wake.set()
            return
        with contextlib.suppress(RuntimeError):  # its loop has ended
            self._runs_on.call_soon_threadsafe(self._wake.set)


def _headers(event_type: str, stored: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Kafka headers of a structured-mode CloudEvent: its content type, the trace headers, a routing hint.

    No `ce_*` header: the CloudEvents Kafka binding reads any of them as binary mode. `hss-event-type` repeats the
    type outside that namespace so routers and tools can filter without parsing the value.
    """
    hdrs = [("content-type", STRUCTURED_CONTENT_TYPE)]
    hdrs.extend((k, str(v).encode()) for k, v in stored.items())
    hdrs.append((TYPE_HEADER, event_type.encode()))
    return hdrs


def _iso(epoch: float | None) -> str | None:
    """An ISO-8601 UTC timestamp, or None."""
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None
