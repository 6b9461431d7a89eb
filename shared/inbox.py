"""Inbox consumer: applies each event once in a DB transaction, commits offsets only after it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from pydantic import ValidationError

from shared import context, kafka
from shared.db import DB_UNAVAILABLE
from shared.events import Envelope, Event, registry
from shared.metrics import CONSUMER_LAG, EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, HANDLER_DURATION
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Event[Any]], Awaitable[None]]


class Poison(Exception):
    """A message that can never be applied (bad JSON, unknown type, payload not matching its contract)."""


@dataclass
class _Failure:
    error: str
    attempts: int


class InboxConsumer:
    """A consumer group applying registered event types through handlers, each event once."""

    def __init__(self, settings: ServiceSettings, pool: asyncpg.Pool, group: str, handlers: dict[str, Handler]) -> None:
        self.settings = settings
        self.pool = pool
        self.group = group
        self.handlers = handlers
        self.service = settings.service_name
        self.logical_topics = registry.topics_for(list(handlers))
        self.topics = [settings.topic(t) for t in self.logical_topics]
        self._logical = dict(zip(self.topics, self.logical_topics, strict=True))
        self.applied = 0
        self.dead_lettered = 0
        self.ready = asyncio.Event()

    def dlt_topic(self, topic: str) -> str:
        """Dead-letter topic for a physical topic: `<topic>.<consumer-group>.dlt`."""
        return f"{topic}.{self.group}.dlt"

    async def run(self) -> None:
        """Consume until cancelled; restarts with backoff when Kafka or PostgreSQL is down."""
        await kafka.ensure_topics(
            self.settings.kafka_bootstrap_servers,
            [
                kafka.TopicSpec(self.dlt_topic(t), partitions=1, replication=self.settings.topic_replication)
                for t in self.topics
            ],
        )
        backoff = 0.2
        while True:
            consumer = kafka.consumer(
                self.settings.kafka_bootstrap_servers,
                group=self.group,
                client_id=f"{self.service}-{self.group}",
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
                log.warning("consumer %s interrupted, retrying in %.1fs: %r", self.group, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await dlt.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, dlt: AIOKafkaProducer) -> None:
        """Fetch batches, apply them per partition, then commit that partition's offset."""
        last_lag = 0.0
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=self.settings.consumer_batch_size)
            self.ready.set()
            for tp, records in batches.items():
                await self._process(records, dlt)
                with contextlib.suppress(Exception):  # a rebalance may revoke it: the inbox absorbs redelivery
                    await consumer.commit({tp: records[-1].offset + 1})
            if time.monotonic() - last_lag > 2.0:
                await self._update_lag(consumer)
                last_lag = time.monotonic()

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
        """Apply a partition's records in one transaction; on any failure, one by one with retries."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                for rec in records:
                    await self._apply(conn, rec)
            return
        except DB_UNAVAILABLE:
            raise
        except Exception:
            pass  # some record failed: the batch rolled back; isolate it below
        for rec in records:
            failure = await self._apply_alone(rec)
            if failure is not None:
                await self._dead_letter(dlt, rec, failure)

    async def _apply_alone(self, rec: ConsumerRecord) -> _Failure | None:
        """Apply one record in its own transaction with bounded retries; a failure if it never applies."""
        attempts = 0
        while True:
            attempts += 1
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._apply(conn, rec)
                return None
            except DB_UNAVAILABLE:
                raise
            except Poison as exc:
                return _Failure(f"poison: {exc}", attempts)
            except Exception as exc:
                EVENTS_CONSUMED.labels(self.service, self.group, self._logical_of(rec), "failed_attempt").inc()
                if attempts >= self.settings.consumer_max_attempts:
                    return _Failure(f"{type(exc).__name__}: {exc}", attempts)
                await asyncio.sleep(self.settings.consumer_retry_backoff_seconds * 2 ** (attempts - 1))

    def _logical_of(self, rec: ConsumerRecord) -> str:
        return self._logical.get(rec.topic, rec.topic)

    def _parse(self, rec: ConsumerRecord) -> Event[Any] | None:
        """The typed event, None for a known type this group does not handle; Poison otherwise."""
        try:
            env = Envelope.model_validate(orjson.loads(rec.value or b""))
        except (orjson.JSONDecodeError, ValidationError, TypeError) as exc:
            raise Poison(f"not a valid envelope: {str(exc)[:300]}") from exc
        try:
            spec = registry.spec(env.type)
        except KeyError as exc:
            raise Poison(f"unknown event type {env.type!r}") from exc
        if env.type not in self.handlers:
            return None
        try:
            payload = spec.model.model_validate(env.data)
        except ValidationError as exc:
            raise Poison(f"payload does not match {env.type}: {str(exc)[:300]}") from exc
        return Event(
            envelope=env,
            payload=payload,
            topic=self._logical_of(rec),
            partition=rec.partition,
            offset=rec.offset,
        )

    async def _apply(self, conn: asyncpg.Connection, rec: ConsumerRecord) -> None:
        """Record the event in the inbox and run its handler, unless it was applied before."""
        event = self._parse(rec)
        topic = self._logical_of(rec)
        if event is None:
            EVENTS_CONSUMED.labels(self.service, self.group, topic, "ignored").inc()
            return
        env = event.envelope
        status = await conn.execute(
            "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            self.group,
            env.id,
        )
        if status.endswith(" 0"):
            EVENTS_CONSUMED.labels(self.service, self.group, topic, "duplicate").inc()
            return
        traceparent = dict(rec.headers or ()).get("traceparent")
        token = context.set_current(
            context.for_event(str(env.id), env.correlationid, traceparent.decode() if traceparent else None)
        )
        started = time.perf_counter()
        try:
            await self.handlers[env.type](conn, event)
        finally:
            context.reset(token)
        HANDLER_DURATION.labels(self.service, self.group, env.type).observe(time.perf_counter() - started)
        EVENTS_CONSUMED.labels(self.service, self.group, topic, "applied").inc()
        self.applied += 1

    async def _dead_letter(self, dlt: AIOKafkaProducer, rec: ConsumerRecord, failure: _Failure) -> None:
        """Park a record on the dead-letter topic with why, how often and where it came from."""
        headers = [
            *list(rec.headers or ()),
            ("dlt.error", failure.error[:2000].encode()),
            ("dlt.attempts", str(failure.attempts).encode()),
            ("dlt.original.topic", rec.topic.encode()),
            ("dlt.original.partition", str(rec.partition).encode()),
            ("dlt.original.offset", str(rec.offset).encode()),
            ("dlt.consumer.group", self.group.encode()),
        ]
        await dlt.send_and_wait(self.dlt_topic(rec.topic), value=rec.value, key=rec.key, headers=headers)
        EVENTS_DEAD_LETTERED.labels(self.service, self.group, self._logical_of(rec)).inc()
        EVENTS_CONSUMED.labels(self.service, self.group, self._logical_of(rec), "dead_lettered").inc()
        self.dead_lettered += 1
        log.error("event dead-lettered", extra={"topic": rec.topic, "offset": rec.offset, "error": failure.error})
