"""Transactional outbox: events are rows written in the caller's transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import orjson
from pydantic import BaseModel

from shared import context, db
from shared.events import Envelope, new_envelope, registry
from shared.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING


def _trace() -> tuple[str, str | None, dict[str, str]]:
    """Correlation id, causation id and Kafka headers from the current context."""
    ctx = context.current()
    if ctx is None:
        ctx = context.TraceContext(correlation_id=str(uuid.uuid4()), trace_id=context.new_trace_id())
    return ctx.correlation_id, ctx.causation_id, {"traceparent": ctx.traceparent}


Row = tuple[uuid.UUID, str, str, str, str, str]

# One statement for any number of rows (one trigger run, one NOTIFY); ids follow the rows' order.
INSERT = """
INSERT INTO outbox (event_id, topic, key, type, envelope, headers)
SELECT event_id, topic, key, type, envelope::jsonb, headers::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     WITH ORDINALITY AS r(event_id, topic, key, type, envelope, headers, n)
ORDER BY n
"""


def outbox_rows(payloads: Sequence[BaseModel]) -> tuple[list[Envelope], list[Row]]:
    """Envelopes and outbox rows for `payloads` under the current trace context (nothing written yet)."""
    correlation_id, causation_id, headers = _trace()
    header_json = orjson.dumps(headers).decode()
    envelopes: list[Envelope] = []
    rows: list[Row] = []
    for payload in payloads:
        spec = registry.spec_for(payload)
        env = new_envelope(spec, payload, correlation_id=correlation_id, causation_id=causation_id)
        envelopes.append(env)
        # The envelope is serialised once; PostgreSQL parses it into jsonb.
        rows.append((env.id, spec.topic_for(payload), spec.key(payload), spec.type, env.model_dump_json(), header_json))
    return envelopes, rows


async def insert_rows(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """Insert outbox rows in one statement, in order; the caller owns the transaction."""
    if rows:
        await conn.execute(INSERT, *(list(col) for col in zip(*rows, strict=True)))


async def add_events(conn: asyncpg.Connection, payloads: Sequence[BaseModel]) -> list[Envelope]:
    """Insert events for `payloads` into the outbox (logical topic names); the caller owns the transaction."""
    if not payloads:
        return []
    envelopes, rows = outbox_rows(payloads)
    await insert_rows(conn, rows)
    return envelopes


async def add_event(conn: asyncpg.Connection, payload: BaseModel) -> Envelope:
    """Insert one event into the outbox in the caller's transaction."""
    return (await add_events(conn, [payload]))[0]


async def backlog(pool: asyncpg.Pool) -> tuple[int, float]:
    """Committed rows not yet published, and the age in seconds of the oldest of them (0 when none)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age "
        "FROM outbox WHERE published_at IS NULL"
    )
    return int(row["n"]), float(row["age"])


async def watch_backlog(pool: asyncpg.Pool, service: str, interval: float) -> None:
    """Keep the backlog gauges true from the database, on every replica, whatever the relay and Kafka are doing.

    While the database is unreachable the gauges keep their last values (readiness already says so).
    """
    while True:
        try:
            pending, age = await backlog(pool)
        except Exception as exc:
            if not db.is_transient(exc):
                raise
        else:
            OUTBOX_PENDING.labels(service).set(pending)
            OUTBOX_OLDEST_AGE.labels(service).set(age)
        await asyncio.sleep(interval)
