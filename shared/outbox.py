"""Transactional outbox: events are rows written in the caller's transaction."""

from __future__ import annotations

import asyncio
import functools
import io
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel, TypeAdapter

from shared import context, db
from shared.events import Envelope, new_envelope, registry
from shared.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING


def _trace(cause: context.TraceContext | None = None) -> tuple[str, str | None, dict[str, str]]:
    """Correlation id, causation id and Kafka headers of events caused by `cause` (by default the current work).

    The `traceparent` names the span the events were written under when tracing is on (the relay's publish span
    becomes its child), so the trace goes on from the write; see shared/tracing.py.
    """
    ctx = cause or context.current_or_new()
    return ctx.correlation_id, ctx.causation_id, {"traceparent": ctx.traceparent}


Row = tuple[uuid.UUID, str, str, str, str, str]

# One statement for any number of rows (one trigger run, one NOTIFY); ids follow the rows' order.
INSERT = """
INSERT INTO outbox (event_id, topic, key, type, envelope, headers)
SELECT event_id, topic, key, type, envelope::json, headers::json
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     WITH ORDINALITY AS r(event_id, topic, key, type, envelope, headers, n)
ORDER BY n
"""


def outbox_rows(
    payloads: Sequence[BaseModel], cause: context.TraceContext | None = None
) -> tuple[list[Envelope], list[Row]]:
    """Envelopes and outbox rows for `payloads` caused by `cause` (default: the current work); nothing written yet."""
    correlation_id, causation_id, headers = _trace(cause)
    header_json = orjson.dumps(headers).decode()
    envelopes: list[Envelope] = []
    rows: list[Row] = []
    for payload in payloads:
        spec = registry.spec_for(payload)
        env = new_envelope(spec, payload, correlation_id=correlation_id, causation_id=causation_id)
        envelopes.append(env)
        # The envelope is serialised once; PostgreSQL checks it is JSON and keeps the text (shared migration 006).
        rows.append((env.id, spec.topic_for(payload), spec.key(payload), spec.type, env.model_dump_json(), header_json))
    return envelopes, rows


async def insert_rows(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """Insert outbox rows in one statement, in order; the caller owns the transaction."""
    if rows:
        await conn.execute(INSERT, *(list(col) for col in zip(*rows, strict=True)))


COLUMNS = ["event_id", "topic", "key", "type", "envelope", "headers"]


def _copy_text(value: str) -> str:
    """A value in COPY's text format: backslash, tab, newline and carriage return escaped."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


async def copy_rows(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """Insert outbox rows with COPY, in order (ids follow it; one trigger run, one NOTIFY): for thousands of rows,
    where it costs PostgreSQL less than `insert_rows`' statement. The caller owns the transaction."""
    if rows:
        text = "".join("\t".join([str(r[0]), *map(_copy_text, r[1:])]) + "\n" for r in rows)
        await conn.copy_to_table("outbox", source=io.BytesIO(text.encode()), columns=COLUMNS)


async def add_events(conn: asyncpg.Connection, payloads: Sequence[BaseModel]) -> list[Envelope]:
    """Insert events for `payloads` into the outbox (logical topic names); the caller owns the transaction."""
    return await add_caused(conn, [(None, payloads)])


async def add_caused(
    conn: asyncpg.Connection, groups: Iterable[tuple[context.TraceContext | None, Sequence[BaseModel]]]
) -> list[Envelope]:
    """Insert events of several causes in one statement, each group under its cause's correlation id and trace.

    For work done for many requests or consumed events at once: a batch handler names each event's cause as
    `(event.trace, payloads)`, a group commit each request's context. A None cause is the current work.
    """
    envelopes: list[Envelope] = []
    rows: list[Row] = []
    for cause, payloads in groups:
        if payloads:
            group_envelopes, group_rows = outbox_rows(payloads, cause)
            envelopes += group_envelopes
            rows += group_rows
    await insert_rows(conn, rows)
    return envelopes


async def add_event(conn: asyncpg.Connection, payload: BaseModel) -> Envelope:
    """Insert one event into the outbox in the caller's transaction."""
    return (await add_events(conn, [payload]))[0]


BULK_CHUNK = 10_000  # rows per statement of add_bulk: bounded memory for a 200,000-row import


@functools.cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


async def add_bulk(conn: asyncpg.Connection, items: Sequence[tuple[type[BaseModel], Mapping[str, Any]]]) -> int:
    """Insert one event per `(contract class, field values)`, in order, in the caller's transaction; how many.

    For set-based writes of thousands of rows (imports), where building a model and an envelope per row would cost
    more than the write: the values are validated against the contract in one pass per class, and every envelope
    is the kit's (`new_envelope` of the chunk's first payload of that class) with its own id, subject and data.
    """
    correlation_id, causation_id, headers = _trace()
    header_json = orjson.dumps(headers).decode()
    for start in range(0, len(items), BULK_CHUNK):
        chunk = items[start : start + BULK_CHUNK]
        by_model: dict[type[BaseModel], list[int]] = {}
        for i, (model, _) in enumerate(chunk):
            by_model.setdefault(model, []).append(i)
        rows: list[Row | None] = [None] * len(chunk)
        for model, at in by_model.items():
            adapter = _list_adapter(model)
            payloads = adapter.validate_python([chunk[i][1] for i in at])
            datas = adapter.dump_python(payloads, mode="json")
            spec = registry.spec_for(payloads[0])
            template = new_envelope(
                spec, payloads[0], correlation_id=correlation_id, causation_id=causation_id
            ).model_dump(mode="json")
            for i, payload, data in zip(at, payloads, datas, strict=True):
                event_id = uuid.uuid4()
                envelope = {**template, "id": str(event_id), "subject": spec.subject(payload), "data": data}
                rows[i] = (
                    event_id,
                    spec.topic_for(payload),
                    spec.key(payload),
                    spec.type,
                    orjson.dumps(envelope).decode(),
                    header_json,
                )
        await copy_rows(conn, [r for r in rows if r is not None])
    return len(items)


async def backlog(pool: asyncpg.Pool) -> tuple[int, float]:
    """Committed rows not yet published (every row: the relay deletes what Kafka acknowledged), and the age in
    seconds of the oldest of them (0 when none)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age FROM outbox"
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
