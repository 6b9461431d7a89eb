"""Inbox consumer: applies each event once in a DB transaction, commits offsets only after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from pydantic import ValidationError

from shared import context, db, kafka, tracing
from shared.events import Envelope, Event, Fact, lean_envelope, registry, typed_envelope
from shared.metrics import CONSUMER_LAG, EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, HANDLER_DURATION
from shared.relay import TYPE_HEADER
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_T = TypeVar("_T")
# The OpenTelemetry messaging attributes every `process` span of a consumer carries (one record or a batch).
_PROCESS_SPAN = {
    "messaging.system": "kafka",
    "messaging.operation.type": "process",
    "messaging.operation.name": "process",
}

Handler = Callable[[asyncpg.Connection, Event[Any]], Awaitable[None]]
EntityKeys = Callable[[Any], Iterable[str]]
"""The entities an event's handler reads or writes, from its payload: e.g. `lambda p: [f"family:{p.family_id}"]`."""


@dataclass(frozen=True)
class Locked:
    """A handler that runs only while its transaction holds a lock on each entity `keys` names (see `_lock`).

    Declare it when the handler decides from rows that events of ANOTHER topic write (a student event reading its
    family's row, a family event reading its students'): such events are in other partitions, so they run in other
    lanes or other replicas, and under READ COMMITTED neither would see the other's uncommitted row. Every event
    touching one entity must name the same key, whatever its topic.
    """

    keys: EntityKeys
    handler: Handler

    async def __call__(self, conn: asyncpg.Connection, event: Event[Any]) -> None:
        await self.handler(conn, event)


@dataclass(frozen=True)
class Batch:
    """A set-based subscription: `apply` gets all fresh events of `types` in a lane's poll at once, in order.

    Use it when applying many events in a few statements is much cheaper than one at a time (projections,
    reactions). `apply` must give the same result for any split of the stream into batches, because a failed
    batch is redone record by record (each a batch of one, with retries and dead letters).

    Events `apply` writes belong to the whole batch unless it names their cause: write them with
    `outbox.add_caused(conn, [(event.trace, payloads), ...])` so each continues its cause's correlation id and
    trace (see shared/tracing.py for the spans).
    """

    types: frozenset[str]
    apply: Callable[[asyncpg.Connection, list[Event[Any]]], Awaitable[None]]
    keys: EntityKeys | None = None  # as `Locked.keys`: entities locked for the batch's transaction


@dataclass(frozen=True)
class Facts:
    """A copying subscription: `apply` gets a whole poll's events of `types` as `Fact`s, in order, in one transaction.

    For a copy of another service's facts (shared/directory) whose `apply` is idempotent by itself: it writes
    nothing for an event whose effect is already there, so the group keeps no inbox rows (a redelivered or replayed
    event is applied again and must change nothing, which the subscription's own tests prove; dead letters are still
    recorded in the inbox). Each event is validated against its contract without building models (its type and
    payload fields as a dict, `shared.events.lean_envelope`) and gets no context or span of its own: the poll runs
    under one context (the events' correlation and trace ids when they share them; its span links every record's
    when traced), and whatever `apply` writes belongs to the poll. One lane (a poll is one transaction, so events
    of different topics about one entity never wait on each other's locks), polls of `consumer_copy_batch_size`.
    A record that fails validation fails the poll, which is then redone record by record: it is dead-lettered
    with the field at fault, the others applied.

    `then` is for a few of these types whose handling is not idempotent by itself (a merge of two children moves
    cases and writes events): after `apply`, in the same transaction, each such event not applied before goes to
    `then.apply` once, as a typed `Event`, with the inbox of this group deciding which are fresh (as for a `Batch`
    group). The service's group then reads each topic once: a second group for those few types fetched and unpacked
    every record of their busy topic only to ignore it. `then.keys` adds its entities to the poll's locks.
    """

    types: frozenset[str]
    apply: Callable[[asyncpg.Connection, list[Fact]], Awaitable[None]]
    keys: Callable[[Fact], Iterable[str]] | None = None  # as `Locked.keys`, from the fact: entities locked
    then: Batch | None = None  # for some of `types`: applied once each (inbox), after `apply`, in its transaction

    def __post_init__(self) -> None:
        if self.then is not None and not self.then.types <= self.types:
            raise ValueError(f"`then` handles types the copy does not: {sorted(self.then.types - self.types)}")


Subscription = dict[str, Handler] | Batch | Facts
"""What a consumer group applies: handlers per event type (each event alone), a `Batch` or a `Facts`."""


def subscribed_types(subscription: Subscription) -> frozenset[str]:
    """The event types a subscription applies."""
    return frozenset(subscription if isinstance(subscription, dict) else subscription.types)


class UnknownType(Exception):
    """An event type this version does not know (not in the registry): skipped, not dead-lettered."""


class Poison(Exception):
    """A message that can never be applied (bad JSON, payload not matching its contract)."""


@dataclass
class _Failure:
    error: str
    attempts: int


def envelope_of(rec: ConsumerRecord) -> Envelope:
    """The envelope of a CloudEvent in either Kafka content mode (structured is what our relay sends).

    As the Kafka binding says: a `content-type` of `application/cloudevents...` means structured mode; `ce_*`
    headers otherwise mean binary mode (read with the CloudEvents SDK); a message with neither is taken as
    structured, as earlier producers sent it.
    """
    headers = {k.lower(): v for k, v in rec.headers or () if v is not None}
    structured = headers.get("content-type", b"").startswith(b"application/cloudevents")
    if structured or "ce_specversion" not in headers:
        return Envelope.model_validate_json(rec.value or b"")
    # The SDK makes up an id and a time when they are missing: a redelivery would then apply twice.
    missing = [h for h in ("ce_id", "ce_time") if h not in headers]
    if missing:
        raise ValueError(f"binary-mode event without {' and '.join(missing)}")
    event = ce_kafka.from_binary_event(ce_kafka.KafkaMessage(headers=headers, key=rec.key, value=rec.value or b""))
    attributes = event.get_attributes()
    attributes.pop(ce_kafka.PARTITIONKEY_ATTR, None)  # the binding's copy of the Kafka key
    return Envelope.model_validate({**attributes, "data": event.get_data()})


class InboxConsumer:
    """A consumer group applying registered event types through handlers, each event once."""

    def __init__(self, settings: ServiceSettings, pool: asyncpg.Pool, group: str, handlers: Subscription) -> None:
        self.settings = settings
        self.pool = pool
        self.group = group
        self.handlers: dict[str, Handler] = handlers if isinstance(handlers, dict) else {}
        self.batch = handlers if isinstance(handlers, Batch) else None
        self.facts = handlers if isinstance(handlers, Facts) else None
        self.types = subscribed_types(handlers)
        self.service = settings.service_name
        self.logical_topics = registry.topics_for(sorted(self.types))
        self.topics = [settings.topic(t) for t in self.logical_topics]
        self._logical = dict(zip(self.topics, self.logical_topics, strict=True))
        # Per handled type (as the relay's `hss-event-type` header spells it): its envelope with a typed `data`.
        self._typed = {t.encode(): typed_envelope(registry.spec(t).model) for t in self.types}
        # For a copying subscription, per handled type: the type and its envelope validated to plain dicts.
        self._lean = {t.encode(): (t, lean_envelope(registry.spec(t).model)) for t in self.types} if self.facts else {}
        self._then = self.facts.then.types if self.facts is not None and self.facts.then is not None else frozenset()
        # The registered types this group does not handle (on the topics it reads, as the header spells them).
        self._others = frozenset(s.type.encode() for s in registry.all()) - set(self._typed)
        self._ahead: _Read | None = None  # a copy's poll being applied, as `_fetch` read it
        self.applied = 0
        self.dead_lettered = 0
        self._counters: dict[tuple[str, str], Any] = {}
        self._timers: dict[str, Any] = {}
        self._tracer = tracing.tracer(self.service)  # None when tracing is off: no span work at all
        self.ready = asyncio.Event()
        self.running = False  # connected to Kafka and polling
        self.idle = False  # its last poll found nothing new (caught up at that moment)
        self.last_poll_at: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None

    def health(self) -> dict[str, Any]:
        """Whether the group is polling, when it last polled, its last error (for /healthz)."""
        return {
            "running": self.running,
            "applied": self.applied,
            "dead_lettered": self.dead_lettered,
            "last_poll_at": _iso(self.last_poll_at),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
        }

    def dlt_topic(self, topic: str) -> str:
        """Dead-letter topic for a physical topic: `<topic>.<consumer-group>.dlt`."""
        return f"{topic}.{self.group}.dlt"

    async def run(self) -> None:
        """Consume until cancelled; restarts with backoff when Kafka or PostgreSQL is down."""
        s = self.settings
        # The consumed topics too: a consumer subscribed before its topic exists would not see it until the next
        # metadata refresh. Creating it here with the platform's partition count is what its owner does, too.
        await kafka.ensure_topics(
            s.kafka_bootstrap_servers,
            [kafka.topic_spec(s, t) for t in self.topics]
            + [kafka.topic_spec(s, self.dlt_topic(t), partitions=1) for t in self.topics],
        )
        backoff = 0.2
        while True:
            consumer = kafka.consumer(
                self.settings.kafka_bootstrap_servers,
                # The topic prefix scopes the group too, so parallel test runs on one broker never share a group.
                group=self.settings.topic_prefix + self.group,
                client_id=f"{self.service}-{self.group}",
                partitions=len(self.topics) * s.topic_partitions,
                buffer_bytes=s.consumer_fetch_buffer_bytes,
                min_bytes=s.consumer_fetch_min_bytes,
                max_wait_ms=s.consumer_fetch_max_wait_ms,
            )
            dlt = kafka.producer(self.settings.kafka_bootstrap_servers, client_id=f"{self.service}-{self.group}-dlt")
            try:
                await consumer.start()
                await dlt.start()
                consumer.subscribe(self.topics)
                backoff = 0.2
                await self._loop(consumer, dlt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.running = False
                self.last_error, self.last_error_at = f"{type(exc).__name__}: {exc}"[:500], time.time()
                log.warning("consumer %s interrupted, retrying in %.1fs: %r", self.group, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self.running = False
                await kafka.close_consumer(consumer, s.shutdown_timeout_seconds)
                await kafka.close_producer(dlt)

    async def _loop(self, consumer: AIOKafkaConsumer, dlt: AIOKafkaProducer) -> None:
        """Fetch a poll, apply it in `consumer_parallelism` concurrent transactions, then commit its offsets.

        A partition's records stay in order inside one lane (partition number modulo the lane count); keys never
        span partitions, so lanes touch disjoint aggregates. Offsets are committed only after every lane's
        transaction committed; a crash in between only causes a redelivery, which the inbox absorbs. A copying
        subscription fetches and reads its next poll while the current one is applied (`_fetch`).

        The commit is a round trip to the group's coordinator: the next poll is fetched and applied while it is on
        its way (`_commit`), so an event that arrives meanwhile does not wait for it. One commit is on its way at a
        time; the offsets of the polls applied meanwhile go out together in the next one (each poll's offsets only
        after its transactions committed), so commits are no more frequent than before.
        """
        last_lag = 0.0
        s = self.settings
        lanes_n = 1 if self.facts is not None else max(1, s.consumer_parallelism)
        poll = s.consumer_copy_batch_size if self.facts is not None else s.consumer_batch_size
        fetching = asyncio.create_task(self._fetch(consumer, poll))
        committing: asyncio.Task[None] | None = None
        applied: dict[TopicPartition, int] = {}  # offsets of applied polls not yet handed to a commit
        try:
            while True:
                batches, read = await fetching
                self.running, self.last_poll_at, self.idle = True, time.time(), not batches
                self.ready.set()
                # A copy reads and validates its next poll while this one's transaction runs (see `_fetch`).
                ahead = self.facts is not None and bool(batches)
                if ahead:
                    fetching = asyncio.create_task(self._fetch(consumer, poll))
                if batches:
                    lanes: list[list[ConsumerRecord]] = [[] for _ in range(lanes_n)]
                    for tp, records in sorted(batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)):
                        lanes[tp.partition % lanes_n].extend(records)
                    # Every lane finishes (or fails) before the next poll or a restart: a lane left running would
                    # race the redelivery of its own records.
                    self._ahead = read
                    results = await asyncio.gather(
                        *(self._process(lane, dlt) for lane in lanes if lane), return_exceptions=True
                    )
                    self._ahead = None
                    for result in results:
                        if isinstance(result, BaseException):
                            raise result
                    committing = self._to_commit(consumer, batches, applied, committing)
                if time.monotonic() - last_lag > 2.0:
                    await self._update_lag(consumer)
                    last_lag = time.monotonic()
                if not ahead:
                    fetching = asyncio.create_task(self._fetch(consumer, poll))
        finally:
            fetching.cancel()
            with contextlib.suppress(BaseException):
                await fetching
            if committing is not None:  # what was applied is committed before the consumer closes or restarts
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(committing), self.settings.shutdown_timeout_seconds)

    def _to_commit(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord]],
        applied: dict[TopicPartition, int],
        committing: asyncio.Task[None] | None,
    ) -> asyncio.Task[None]:
        """Add an applied poll's offsets to `applied`; a commit on its way takes them when it ends, else a new one."""
        applied.update((tp, records[-1].offset + 1) for tp, records in batches.items())
        if committing is None or committing.done():
            return asyncio.create_task(self._commit(consumer, applied))
        return committing

    @staticmethod
    async def _commit(consumer: AIOKafkaConsumer, applied: dict[TopicPartition, int]) -> None:
        """Commit the applied offsets, one commit at a time, until none is left (`applied` grows meanwhile)."""
        while applied:
            offsets = dict(applied)
            applied.clear()
            with contextlib.suppress(Exception):  # a rebalance may revoke partitions: the inbox absorbs it
                await consumer.commit(offsets)

    async def _fetch(
        self, consumer: AIOKafkaConsumer, poll: int
    ) -> tuple[dict[TopicPartition, list[ConsumerRecord]], _Read | None]:
        """The next poll, and for a copying subscription its records read and validated (`_read_facts`; None when
        one of them is not valid: the poll then fails in its transaction and is redone record by record).

        A copy fetches its next poll while the previous one is applied: reading and validating records (about half
        a copy's CPU per event) then overlaps with the database applying the previous poll. Its records are
        applied only after that poll's transaction committed, in order; a failure restarts the consumer, which drops
        the poll read ahead and fetches again from the committed offsets.
        """
        batches = await consumer.getmany(timeout_ms=200, max_records=poll)
        if self.facts is None or not batches:
            return batches, None
        records = [
            rec for _, recs in sorted(batches.items(), key=lambda kv: (kv[0].topic, kv[0].partition)) for rec in recs
        ]
        try:
            return batches, self._read_facts(records)
        except Exception:
            return batches, None

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Lag per topic = sum over assigned partitions of highwater - position."""
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            if hw is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(hw - await consumer.position(tp), 0)
        for topic, value in lag.items():
            CONSUMER_LAG.labels(self.service, self.group, self._logical.get(topic, topic)).set(value)

    async def _process(self, records: list[ConsumerRecord], dlt: AIOKafkaProducer) -> None:
        """Apply records in one transaction; on a failing record or a timeout, one by one (in order).

        Transient database errors (outage, deadlock, serialization failure, lock timeout) are retried in place,
        without limit and without committing offsets: they say nothing about the events.
        """
        if len(records) > 1:
            try:
                await self._retrying(records[0].topic, lambda: self._transaction(records), split_on_timeout=True)
                return
            except Exception as exc:
                log.info("batch of %d failed (%r): applying its records one by one", len(records), exc)
        for rec in records:
            failure = await self._apply_alone(rec)
            if failure is not None:
                await self._dead_letter(dlt, rec, failure)

    async def _transaction(self, records: list[ConsumerRecord]) -> None:
        """Apply records in one transaction; their outcomes are counted once it committed."""
        async with self.pool.acquire() as conn, conn.transaction():
            outcomes = await self._apply(conn, records)
        for (topic, outcome), n in Counter(outcomes).items():
            self._count(topic, outcome, n)
            if outcome == "applied":
                self.applied += n

    async def _retrying(self, topic: str, work: Callable[[], Awaitable[_T]], *, split_on_timeout: bool = False) -> _T:
        """Run `work` until it succeeds or fails for a reason other than a transient database error."""
        s = self.settings
        retries = 0
        while True:
            try:
                return await work()
            except Exception as exc:
                if not db.is_transient(exc) or (split_on_timeout and db.is_timeout(exc)):
                    raise
                retries += 1
                self._count(topic, "transient_retry")
                self.last_error, self.last_error_at = f"{type(exc).__name__}: {exc}"[:500], time.time()
                delay = min(
                    s.consumer_retry_backoff_seconds * 2 ** min(retries - 1, 16), s.consumer_retry_max_backoff_seconds
                )
                log.warning(
                    "consumer %s: transient database error, retry %d in %.1fs: %r", self.group, retries, delay, exc
                )
                await asyncio.sleep(delay)

    async def _apply_alone(self, rec: ConsumerRecord) -> _Failure | None:
        """Apply one record in its own transaction; a failure if it never applies after bounded attempts.

        Only deterministic failures count as attempts; transient database errors are retried without limit.
        """
        attempts = 0
        while True:
            attempts += 1
            try:
                await self._retrying(rec.topic, lambda: self._transaction([rec]))
                return None
            except Poison as exc:
                return _Failure(f"poison: {exc}", attempts)
            except Exception as exc:
                self._count(rec.topic, "failed_attempt")
                if attempts >= self.settings.consumer_max_attempts:
                    return _Failure(f"{type(exc).__name__}: {exc}", attempts)
                await asyncio.sleep(self.settings.consumer_retry_backoff_seconds * 2 ** (attempts - 1))

    def _count(self, topic: str, outcome: str, n: int = 1) -> None:
        """Count consumed events by logical topic and outcome (label children cached: this is a hot path)."""
        child = self._counters.get((topic, outcome))
        if child is None:
            child = EVENTS_CONSUMED.labels(self.service, self.group, self._logical.get(topic, topic), outcome)
            self._counters[(topic, outcome)] = child
        child.inc(n)

    def _parse(self, rec: ConsumerRecord) -> Event[Any] | None:
        """The typed event, None for a known type this group does not handle; Poison otherwise."""
        if self._not_handled(rec):
            return None
        event = self._parse_typed(rec)
        if event is not None:
            return event
        try:
            env = envelope_of(rec)
        except (ValidationError, TypeError, ValueError, BaseCloudEventException) as exc:
            raise Poison(f"not a valid envelope: {str(exc)[:300]}") from exc
        try:
            spec = registry.spec(env.type)
        except KeyError as exc:
            raise UnknownType(env.type) from exc
        if env.type not in self.types:
            return None
        try:
            payload = spec.model.model_validate(env.data)
        except ValidationError as exc:
            raise Poison(f"payload does not match {env.type}: {str(exc)[:300]}") from exc
        return Event(
            envelope=env,
            payload=payload,
            topic=self._logical.get(rec.topic, rec.topic),
            partition=rec.partition,
            offset=rec.offset,
            trace=context.for_event(str(env.id), env.correlationid, _traceparent(rec)),
        )

    def _not_handled(self, rec: ConsumerRecord) -> bool:
        """Whether the record is an event of a registered type this group does not handle, by its `hss-event-type`
        header and its envelope's `type`, read without validating the rest (the group ignores it either way).

        A group handling some types of a busy topic (merges: one type of the student topic) otherwise validated
        every envelope of the others only to ignore it. Anything unexpected takes the general path.
        """
        hinted = next((v for k, v in rec.headers or () if k == TYPE_HEADER), None)
        if hinted is None or hinted not in self._others:
            return False
        try:
            return bool(orjson.loads(rec.value or b"").get("type") == hinted.decode())
        except (orjson.JSONDecodeError, AttributeError, UnicodeDecodeError):
            return False

    def _parse_typed(self, rec: ConsumerRecord) -> Event[Any] | None:
        """The fast path of `_parse`: a structured event whose `hss-event-type` header names a type this group handles,
        parsed in one pass (envelope and payload together); None to take the general path instead.

        Half the cost of parsing the envelope and then its payload, which was the largest share of a directory event's
        handling. Anything unexpected (no header, another content mode, a header not matching the envelope's type, an
        invalid message) goes the general way, which says what is wrong with it.
        """
        hinted: bytes | None = None
        traceparent: bytes | None = None
        for key, value in rec.headers or ():
            if key == TYPE_HEADER:
                hinted = value
            elif key == "traceparent":
                traceparent = value
            elif key.startswith("ce_"):
                return None  # binary mode
        if hinted is None:
            return None
        model = self._typed.get(hinted)
        if model is None:
            return None
        try:
            env = model.model_validate_json(rec.value or b"")
        except ValidationError:
            return None
        if env.type.encode() != hinted:
            return None
        return Event(
            envelope=env,
            payload=env.data,
            topic=self._logical.get(rec.topic, rec.topic),
            partition=rec.partition,
            offset=rec.offset,
            trace=context.for_event(
                str(env.id), env.correlationid, traceparent.decode(errors="replace") if traceparent else None
            ),
        )

    async def _apply(self, conn: asyncpg.Connection, records: list[ConsumerRecord]) -> list[tuple[str, str]]:
        """Record the events in the inbox (one statement) and apply each one not applied before (every one, for a
        subscription that keeps no inbox).

        Returns each record's topic and outcome, to be counted if the transaction commits.
        """
        if self.facts is not None:
            ahead = self._ahead
            read = ahead if ahead is not None and ahead.covers(records) else self._read_facts(records)
            return await self._apply_facts(conn, read)
        outcomes: list[tuple[str, str]] = []
        events: list[tuple[ConsumerRecord, Event[Any] | None]] = []
        for rec in records:
            try:
                events.append((rec, self._parse(rec)))
            except UnknownType:
                # A type from a newer producer (a `.v2` during a rolling deploy) or one never registered: nothing
                # this version can do with it, and nothing wrong with it either. Counted, skipped.
                outcomes.append((rec.topic, "unknown_type"))
        handled = [(rec, event) for rec, event in events if event is not None]
        outcomes += [(rec.topic, "ignored") for rec, event in events if event is None]
        await self._lock(conn, [event for _, event in handled])
        todo = await self._first_time(conn, handled)
        first = {id(event) for _, event in todo}
        outcomes += [(rec.topic, "applied" if id(event) in first else "duplicate") for rec, event in handled]
        if self.batch is None:
            for rec, event in todo:
                await self._handle(conn, rec, event)
        elif todo:
            await self._handle_batch(conn, todo, self.batch)
        return outcomes

    async def _first_time(
        self, conn: asyncpg.Connection, events: list[tuple[ConsumerRecord, Event[Any]]]
    ) -> list[tuple[ConsumerRecord, Event[Any]]]:
        """The events not applied before (recorded in the group's inbox now), each once: the same event twice in
        one poll applies once."""
        fresh = await self._fresh(conn, [e.envelope.id for _, e in events])
        todo: list[tuple[ConsumerRecord, Event[Any]]] = []
        for rec, event in events:
            if event.envelope.id in fresh:
                fresh.discard(event.envelope.id)
                todo.append((rec, event))
        return todo

    async def _fresh(self, conn: asyncpg.Connection, ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Record the events in the group's inbox (one statement); the ids not applied before."""
        if not ids:
            return set()
        rows = await conn.fetch(
            # A dead-lettered event that comes again (a replay after a fix) gets another chance; if it fails again
            # this transaction rolls back and the inbox still says it was dead-lettered.
            "INSERT INTO inbox AS i (consumer, event_id) SELECT $1, unnest($2::uuid[]) "
            "ON CONFLICT (consumer, event_id) DO UPDATE SET outcome = 'applied', processed_at = now() "
            "WHERE i.outcome = 'dead_lettered' RETURNING event_id",
            self.group,
            ids,
        )
        return {r[0] for r in rows}

    def _read_facts(self, records: list[ConsumerRecord]) -> _Read:
        """A copying subscription's records read and validated: each one's outcome, the facts of the handled ones,
        their correlation ids and traceparents. UnknownType is an outcome; Poison is raised as `_parse` says."""
        read = _Read([], [], set(), set())
        for rec in records:
            try:
                got = self._read_fact(rec)
            except UnknownType:
                read.outcomes.append((rec.topic, "unknown_type"))
                continue
            if got is None:
                read.outcomes.append((rec.topic, "ignored"))
                continue
            fact, correlation, traceparent = got
            if fact.type in self._then:  # (rare: merges) read again as the typed event `then` gets
                event = self._parse(rec)
                if event is None:  # _read_fact handled this type, so the registry knows it
                    raise RuntimeError(f"{fact.type} is handled by the copy but parsed as unhandled")
                read.then.append((rec, event))
            read.facts.append(fact)
            read.correlations.add(correlation)
            read.traceparents.add(traceparent)
            read.outcomes.append((rec.topic, "applied"))
        read.records = records
        return read

    async def _apply_facts(self, conn: asyncpg.Connection, read: _Read) -> list[tuple[str, str]]:
        """Apply a copying subscription's records (see `Facts`): every handled one, whether seen before or not."""
        assert self.facts is not None
        outcomes, facts, correlations, traceparents = (
            read.outcomes,
            read.facts,
            set(read.correlations),
            read.traceparents,
        )
        if not facts:
            return outcomes
        keys, then = self.facts.keys, self.facts.then
        names = [k for f in facts for k in keys(f)] if keys is not None else []
        if then is not None and then.keys is not None:
            names += [k for _, e in read.then for k in then.keys(e.payload)]
        if names:
            await self._lock_entities(conn, names)  # one statement, in key order, for the facts and `then` alike
        trace_ids = {context.parse_traceparent(t) for t in traceparents}
        span = self._batch_span(read.records)
        ctx = context.TraceContext(
            correlation_id=correlations.pop() if len(correlations) == 1 else str(uuid.uuid4()),
            trace_id=tracing.trace_id_of(span)
            if span is not None
            else (trace_ids.pop() if len(trace_ids) == 1 else None) or context.new_trace_id(),
            span=span,
        )
        started = time.perf_counter()
        with _Within(ctx):
            await self.facts.apply(conn, facts)
        share = (time.perf_counter() - started) / len(facts)
        for t in {f.type for f in facts}:
            self._timer(t).observe(share)  # once per type and poll, at an event's share of the poll
        if then is not None and read.then:
            await self._apply_then(conn, then, read.then)
        return outcomes

    async def _apply_then(
        self, conn: asyncpg.Connection, then: Batch, events: list[tuple[ConsumerRecord, Event[Any]]]
    ) -> None:
        """A copy's `then` part: the events not applied before (the group's inbox) handed to `then.apply` once."""
        todo = await self._first_time(conn, events)
        if todo:
            await self._handle_batch(conn, todo, then)

    def _read_fact(self, rec: ConsumerRecord) -> tuple[Fact, str, str] | None:
        """A record of a copying subscription as (fact, correlation id, traceparent), None for a registered type it
        does not handle; UnknownType or Poison as `_parse` says. Validated in one pass to plain dicts when its
        `hss-event-type` header names a handled type (what the relay sends); any other record, or one that does
        not validate that way, is read the general way, which says what is wrong with it."""
        hinted: bytes | None = None
        traceparent = ""
        for key, value in rec.headers or ():
            if key == TYPE_HEADER:
                hinted = value
            elif key == "traceparent" and value is not None:
                traceparent = value.decode(errors="replace")
            elif key.startswith("ce_"):
                hinted = None  # binary mode
                break
        lean = self._lean.get(hinted) if hinted is not None else None
        if lean is not None:
            try:
                env = lean[1].validate_json(rec.value or b"")
            except ValidationError:
                env = None
            if env is not None and env["type"] == lean[0]:
                return Fact(lean[0], env["data"]), env["correlationid"], traceparent
        event = self._parse(rec)
        if event is None:
            return None
        env_type = event.envelope.type
        return Fact(env_type, event.payload.model_dump()), event.envelope.correlationid, traceparent

    async def _lock(self, conn: asyncpg.Connection, events: list[Event[Any]]) -> None:
        """Take a transaction-scoped advisory lock on every entity the events' handlers declare, before anything else.

        Why locks and not lanes keyed by entity: lanes only order one process, while two replicas of a consumer group
        own different partitions and share nothing but PostgreSQL; a lock in the database serializes both. A lane
        waiting here resumes after the holder committed, so under READ COMMITTED its next statements see that
        transaction's rows. Locks are taken in one statement, sorted by their 64-bit id (also when two names collide),
        and nothing else is locked before them, so lanes and replicas locking overlapping sets cannot deadlock. Names
        are scoped by the service's schema (shared by its consumer groups). A poll's lanes together hold up to its
        records x (keys per event) locks (a copy's poll: consumer_copy_batch_size x keys): the lock table
        (max_locks_per_transaction x max_connections) must have room for that in every replica at once; if not, the
        batch fails and is redone record by record.
        """
        names: list[str] = []
        for event in events:
            if self.batch is not None:
                keys = self.batch.keys
            else:
                handler = self.handlers.get(event.envelope.type)
                keys = handler.keys if isinstance(handler, Locked) else None
            if keys is not None:
                names.extend(keys(event.payload))
        await self._lock_entities(conn, names)

    async def _lock_entities(self, conn: asyncpg.Connection, names: Iterable[str]) -> None:
        """Lock the named entities for the transaction (see `_lock`): each once, in the order of their ids."""
        prefix = f"entity:{self.settings.db_schema}:"
        await db.xact_lock_many(conn, [prefix + k for k in set(names)])

    async def _handle_batch(
        self, conn: asyncpg.Connection, todo: list[tuple[ConsumerRecord, Event[Any]]], batch: Batch | None
    ) -> None:
        """Run the batch handler once, under the batch's context; each event is timed at its share of the batch.

        A batch of one runs under its event's context, like a per-record handler. A larger one runs under a context
        of its own (the events' correlation id if they share one) whose span links every record's; each event's
        own context (`Event.trace`, with a span child of its record's) is what the handler names as the cause of
        the events it writes.
        """
        assert batch is not None
        started = time.perf_counter()
        if len(todo) == 1:
            rec, event = todo[0]
            event = self._traced(rec, event)
            assert event.trace is not None
            with _Within(event.trace):
                await batch.apply(conn, [event])
        else:
            batch_span = self._batch_span([rec for rec, _ in todo])
            links = [tracing.Link(batch_span.get_span_context())] if batch_span is not None else []
            events = [self._traced(rec, event, links) for rec, event in todo]
            traces = [e.trace for e in events if e.trace is not None]
            try:
                with _Within(context.for_batch(traces, batch_span)):
                    await batch.apply(conn, events)
            except BaseException as exc:
                for t in traces:
                    if t.span is not None:
                        tracing.end_failed(t.span, exc)
                raise
            for t in traces:
                if t.span is not None:
                    t.span.end()
        share = (time.perf_counter() - started) / len(todo)
        for _, event in todo:
            self._timer(event.envelope.type).observe(share)

    def _traced(self, rec: ConsumerRecord, event: Event[Any], links: list[tracing.Link] | None = None) -> Event[Any]:
        """The event with a `process <topic>` span (child of the record's traceparent) in its trace, when traced."""
        if self._tracer is None:
            return event
        env = event.envelope
        span = self._tracer.start_span(
            f"process {event.topic}",
            context=tracing.parent_from({"traceparent": _traceparent(rec) or ""}),
            kind=tracing.SpanKind.CONSUMER,
            links=links,
            attributes={
                **_PROCESS_SPAN,
                "messaging.destination.name": rec.topic,
                "messaging.destination.partition.id": str(rec.partition),
                "messaging.kafka.offset": rec.offset,
                "messaging.consumer.group.name": self.group,
                "messaging.message.id": str(env.id),
                "cloudevents.event_id": str(env.id),
                "cloudevents.event_type": env.type,
            },
        )
        return replace(event, trace=context.for_event(str(env.id), env.correlationid, None, span=span))

    def _batch_span(self, records: list[ConsumerRecord]) -> Any:
        """A `process <group>` span linked to every record's context (OpenTelemetry's model for batches), or None."""
        if self._tracer is None:
            return None
        links = [link for link in (tracing.link_to(_traceparent(rec)) for rec in records) if link is not None]
        return self._tracer.start_span(
            f"process {self.group}",
            context=tracing.new_trace(),  # a span has one parent, a batch has many: it links them
            kind=tracing.SpanKind.CONSUMER,
            links=links,
            attributes={
                **_PROCESS_SPAN,
                "messaging.consumer.group.name": self.group,
                "messaging.batch.message_count": len(records),
            },
        )

    def _timer(self, event_type: str) -> Any:
        timer = self._timers.get(event_type)
        if timer is None:
            timer = self._timers[event_type] = HANDLER_DURATION.labels(self.service, self.group, event_type)
        return timer

    async def _handle(self, conn: asyncpg.Connection, rec: ConsumerRecord, event: Event[Any]) -> None:
        """Run the handler under the event's context (and span, when traced), timing it."""
        event = self._traced(rec, event)
        assert event.trace is not None
        started = time.perf_counter()
        with _Within(event.trace):
            await self.handlers[event.envelope.type](conn, event)
        self._timer(event.envelope.type).observe(time.perf_counter() - started)

    async def _dead_letter(self, dlt: AIOKafkaProducer, rec: ConsumerRecord, failure: _Failure) -> None:
        """Park a record on the dead-letter topic with why, how often and where it came from, once.

        The inbox records the outcome in the same transaction, committed only after Kafka acknowledged the dead
        letter: a record redelivered after a crash (offsets not committed yet) is not dead-lettered again.
        """
        headers = [
            *list(rec.headers or ()),
            ("dlt.error", failure.error[:2000].encode()),
            ("dlt.attempts", str(failure.attempts).encode()),
            ("dlt.original.topic", rec.topic.encode()),
            ("dlt.original.partition", str(rec.partition).encode()),
            ("dlt.original.offset", str(rec.offset).encode()),
            ("dlt.consumer.group", self.group.encode()),
        ]

        async def park() -> bool:
            async with self.pool.acquire() as conn, conn.transaction():
                first = await conn.fetchval(
                    "INSERT INTO inbox (consumer, event_id, outcome) VALUES ($1, $2, 'dead_lettered') "
                    "ON CONFLICT DO NOTHING RETURNING true",
                    self.group,
                    _record_id(rec),
                )
                if first:
                    await dlt.send_and_wait(self.dlt_topic(rec.topic), value=rec.value, key=rec.key, headers=headers)
                return bool(first)

        if not await self._retrying(rec.topic, park):
            self._count(rec.topic, "duplicate")
            return
        EVENTS_DEAD_LETTERED.labels(self.service, self.group, self._logical.get(rec.topic, rec.topic)).inc()
        self._count(rec.topic, "dead_lettered")
        self.dead_lettered += 1
        log.error("event dead-lettered", extra={"topic": rec.topic, "offset": rec.offset, "error": failure.error})


@dataclass
class _Read:
    """A copying subscription's poll as read before its transaction (`InboxConsumer._read_facts`)."""

    outcomes: list[tuple[str, str]]
    facts: list[Fact]
    correlations: set[str]
    traceparents: set[str]
    records: list[ConsumerRecord] = field(default_factory=list)
    then: list[tuple[ConsumerRecord, Event[Any]]] = field(default_factory=list)  # the events `Facts.then` handles

    def covers(self, records: list[ConsumerRecord]) -> bool:
        """Whether these are the records read (the whole poll, not one of them redone alone)."""
        return len(records) == len(self.records) and all(a is b for a, b in zip(records, self.records, strict=True))


class _Within:
    """Runs a block as the work of `ctx`: its context current (logs, events), its span active, then ended.

    A class, not a generator-based context manager: it runs once per consumed event.
    """

    __slots__ = ("_active", "_token", "ctx")

    def __init__(self, ctx: context.TraceContext) -> None:
        self.ctx = ctx

    def __enter__(self) -> None:
        self._token = context.set_current(self.ctx)
        self._active = tracing.activate(self.ctx.span) if self.ctx.span is not None else None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        span = self.ctx.span
        if self._active is not None:
            tracing.deactivate(self._active)
        context.reset(self._token)
        if span is not None:
            if exc is not None:
                tracing.end_failed(span, exc)
            else:
                span.end()


def _traceparent(rec: ConsumerRecord) -> str | None:
    """The record's W3C traceparent header, if any."""
    for key, value in rec.headers or ():
        if key == "traceparent" and value is not None:
            return value.decode(errors="replace")
    return None


def _record_id(rec: ConsumerRecord) -> uuid.UUID:
    """The event id of a record, or for one without a readable id, an id made from where it sits in Kafka."""
    try:
        return uuid.UUID(str(orjson.loads(rec.value or b"")["id"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return uuid.uuid5(uuid.NAMESPACE_URL, f"kafka:{rec.topic}/{rec.partition}/{rec.offset}")


def _iso(epoch: float | None) -> str | None:
    """An ISO-8601 UTC timestamp, or None."""
    return datetime.fromtimestamp(epoch, UTC).isoformat() if epoch is not None else None
