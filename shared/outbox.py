"""Transactional outbox: events are rows written in the caller's transaction."""

from __future__ import annotations

import asyncio
import functools
import itertools
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel, TypeAdapter

from shared import context, db
from shared.events import Envelope, new_envelope, registry
from shared.ids import new_ids
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


BULK_CHUNK = 10_000  # rows per statement of add_bulk: each statement short, whatever the pool's command timeout
PIECE = 1_000  # rows built per piece of a statement's data: PostgreSQL stores one piece while the next is built


@functools.cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _bulk_text(
    model: type[BaseModel], values: list[Mapping[str, Any]], event_ids: list[str], trace: tuple[str, str | None, str]
) -> list[str]:
    """COPY text lines (outbox `COLUMNS`) of one contract class's events, in order.

    The values are validated against the contract in one pass; each payload is serialised once, straight to JSON,
    into the kit's envelope (`new_envelope` of the first payload: the attributes every event of the class shares,
    serialised once), with its own id and subject. Only backslashes need escaping in the envelope: JSON text holds
    no raw tab, newline or carriage return.
    """
    correlation_id, causation_id, header_json = trace
    payloads = _list_adapter(model).validate_python(values)
    spec = registry.spec_for(payloads[0])
    serialise = model.__pydantic_serializer__.to_json
    common = new_envelope(spec, payloads[0], correlation_id=correlation_id, causation_id=causation_id).model_dump(
        mode="json", exclude={"id", "subject", "data"}
    )
    shared = orjson.dumps(common).decode()[1:-1]
    after_type = f"\t{_copy_text(spec.type)}\t"
    headers = f"\t{_copy_text(header_json)}\n"
    topics: dict[str, str] = {}
    lines = []
    for event_id, payload in zip(event_ids, payloads, strict=True):
        topic = spec.topic_for(payload)
        copy_topic = topics.get(topic) or topics.setdefault(topic, _copy_text(topic))
        subject = orjson.dumps(spec.subject(payload)).decode()
        data = serialise(payload).decode()
        envelope = f'{{"id":"{event_id}","subject":{subject},{shared},"data":{data}}}'.replace("\\", "\\\\")
        lines.append(f"{event_id}\t{copy_topic}\t{_copy_text(spec.key(payload))}{after_type}{envelope}{headers}")
    return lines


def _piece(items: list[tuple[type[BaseModel], Mapping[str, Any]]], trace: tuple[str, str | None, str]) -> bytes:
    """COPY data of some events, in the order given."""
    by_model: dict[type[BaseModel], list[int]] = {}
    for i, (model, _) in enumerate(items):
        by_model.setdefault(model, []).append(i)
    event_ids = new_ids(len(items))
    if len(by_model) == 1:
        [model] = by_model
        return "".join(_bulk_text(model, [v for _, v in items], event_ids, trace)).encode()
    lines = [""] * len(items)
    for model, at in by_model.items():
        text = _bulk_text(model, [items[i][1] for i in at], [event_ids[i] for i in at], trace)
        for i, line in zip(at, text, strict=True):
            lines[i] = line
    return "".join(lines).encode()


async def _pieces(
    items: Iterator[tuple[type[BaseModel], Mapping[str, Any]]], n: int, trace: tuple[str, str | None, str]
) -> AsyncIterator[bytes]:
    """The COPY data of the next `n` items, a `PIECE` at a time, built as PostgreSQL asks for more."""
    while n > 0:
        piece = list(itertools.islice(items, min(n, PIECE)))
        if not piece:
            return
        n -= len(piece)
        yield _piece(piece, trace)


async def add_bulk(conn: asyncpg.Connection, items: Iterable[tuple[type[BaseModel], Mapping[str, Any]]]) -> int:
    """Insert one event per `(contract class, field values)`, in order, in the caller's transaction; how many.

    For set-based writes of thousands of rows (imports, a campaign launch), where building a model and an envelope
    per row would cost more than the write: the values are validated against the contract in one pass per class and
    each serialised once into the kit's envelope (`_bulk_text`). The rows go in with COPY, `BULK_CHUNK` a statement,
    each statement's data built a `PIECE` at a time while PostgreSQL stores the piece before (`items` may be a
    generator: it is read as the data is built).
    """
    correlation_id, causation_id, headers = _trace()
    trace = (correlation_id, causation_id, orjson.dumps(headers).decode())
    rows = iter(items)
    written = 0
    while first := list(itertools.islice(rows, 1)):
        status = await conn.copy_to_table(
            "outbox", source=_pieces(itertools.chain(first, rows), BULK_CHUNK, trace), columns=COLUMNS
        )
        written += int(status.rsplit(" ", 1)[1])
    return written


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
