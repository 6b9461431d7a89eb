"""Transactional outbox: events are rows written in the caller's transaction."""

from __future__ import annotations

import uuid

import asyncpg
from pydantic import BaseModel

from shared import context
from shared.events import Envelope, new_envelope, registry


def _trace() -> tuple[str, str | None, dict[str, str]]:
    """Correlation id, causation id and Kafka headers from the current context."""
    ctx = context.current()
    if ctx is None:
        ctx = context.TraceContext(correlation_id=str(uuid.uuid4()), trace_id=context.new_trace_id())
    return ctx.correlation_id, ctx.causation_id, {"traceparent": ctx.traceparent}


async def add_events(conn: asyncpg.Connection, payloads: list[BaseModel]) -> list[Envelope]:
    """Insert events for `payloads` into the outbox (logical topic names); the caller owns the transaction."""
    if not payloads:
        return []
    correlation_id, causation_id, headers = _trace()
    envelopes: list[Envelope] = []
    rows = []
    for payload in payloads:
        spec = registry.spec_for(payload)
        env = new_envelope(spec, payload, correlation_id=correlation_id, causation_id=causation_id)
        envelopes.append(env)
        rows.append(
            (
                env.id,
                spec.topic,
                spec.key(payload),
                spec.type,
                env.model_dump_json(),  # serialised once; PostgreSQL parses it into jsonb
                headers,
            )
        )
    await conn.executemany(
        "INSERT INTO outbox (event_id, topic, key, type, envelope, headers)"
        " VALUES ($1, $2, $3, $4, $5::text::jsonb, $6)",
        rows,
    )
    return envelopes


async def add_event(conn: asyncpg.Connection, payload: BaseModel) -> Envelope:
    """Insert one event into the outbox in the caller's transaction."""
    return (await add_events(conn, [payload]))[0]
