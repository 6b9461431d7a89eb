"""Transactional outbox: events are rows written in the caller's transaction."""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import asyncpg
import orjson
from pydantic import BaseModel, TypeAdapter

from shared import context, db
from shared.events import Built, Outgoing, check_built, envelope_json, registry
from shared.ids import new_ids
from shared.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING


def _trace(cause: context.TraceContext | None = None) -> tuple[str, str | None, dict[str, str]]:
    """Correlation id, causation id and Kafka headers of events caused by `cause` (by default the current work).

    The `traceparent` names the span the events were written under when tracing is on (the relay's publish span
    becomes its child), so the trace goes on from the write; see shared/tracing.py.
    """
    ctx = cause or context.current_or_new()
    return ctx.correlation_id, ctx.causation_id, {"traceparent": ctx.traceparent}


class Row(NamedTuple):
    """One outbox row: an event as the relay will send it."""

    event_id: str
    topic: str  # logical (the relay adds the deployment's prefix)
    key: str
    type: str
    envelope: str  # the CloudEvents JSON (`events.envelope_json`); `Envelope.model_validate_json` reads it back
    headers: str  # JSON object of the Kafka headers to send (the trace context)


# One statement for any number of rows (one trigger run, one NOTIFY); ids follow the rows' order.
INSERT = """
INSERT INTO outbox (event_id, topic, key, type, envelope, headers)
SELECT event_id, topic, key, type, envelope::json, headers::json
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
     WITH ORDINALITY AS r(event_id, topic, key, type, envelope, headers, n)
ORDER BY n
"""


# Payloads a service built itself (`events.Built`) are not validated when written; with this set (the test runs set
# it, for the services they start too), every one is checked against its contract as `check_built` does, so a flow
# the tests drive cannot write a built event its contract would refuse.
CHECK_BUILT = os.environ.get("HSS_CHECK_BUILT_EVENTS") == "1"


def _check_built(payloads: Iterable[object]) -> None:
    """With `CHECK_BUILT` set, check each `events.Built` of `payloads` against its contract; nothing otherwise."""
    if CHECK_BUILT:
        for payload in payloads:
            if isinstance(payload, Built):
                check_built(payload)


def outbox_rows(payloads: Sequence[Outgoing], cause: context.TraceContext | None = None) -> list[Row]:
    """Outbox rows for `payloads`, in order, caused by `cause` (default: the current work); nothing written yet."""
    _check_built(payloads)
    correlation_id, causation_id, headers = _trace(cause)
    header_json = orjson.dumps(headers).decode()
    event_ids = new_ids(len(payloads))
    # The envelope is serialised once; PostgreSQL checks it is JSON and keeps the text (shared migration 006).
    envelopes = envelope_json(payloads, event_ids, correlation_id=correlation_id, causation_id=causation_id)
    rows = []
    for event_id, payload, envelope in zip(event_ids, payloads, envelopes, strict=True):
        spec = registry.spec_for(payload)
        rows.append(Row(event_id, spec.topic_for(payload), spec.key(payload), spec.type, envelope, header_json))
    return rows


async def insert_rows(conn: asyncpg.Connection, rows: list[Row]) -> None:
    """Insert outbox rows in one statement, in order; the caller owns the transaction."""
    if rows:
        await conn.execute(INSERT, *(list(col) for col in zip(*rows, strict=True)))


COLUMNS = ["event_id", "topic", "key", "type", "envelope", "headers"]


async def add_events(conn: asyncpg.Connection, payloads: Sequence[Outgoing]) -> list[Row]:
    """Insert events for `payloads` into the outbox (logical topic names), in order; the caller owns the transaction.
    Answers the rows written (`Row.event_id`, `Row.envelope`)."""
    return await add_caused(conn, [(None, payloads)])


async def add_caused(
    conn: asyncpg.Connection, groups: Iterable[tuple[context.TraceContext | None, Sequence[Outgoing]]]
) -> list[Row]:
    """Insert events of several causes in one statement, each group under its cause's correlation id and trace.

    For work done for many requests or consumed events at once: a batch handler names each event's cause as
    `(event.trace, payloads)`, a group commit each request's context. A None cause is the current work.
    """
    rows: list[Row] = []
    for cause, payloads in groups:
        if payloads:
            rows += outbox_rows(payloads, cause)
    await insert_rows(conn, rows)
    return rows


async def add_event(conn: asyncpg.Connection, payload: BaseModel) -> Row:
    """Insert one event into the outbox in the caller's transaction."""
    return (await add_events(conn, [payload]))[0]


BULK_CHUNK = 10_000  # rows per statement of add_bulk: each statement short, whatever the pool's command timeout
PIECE = 1_000  # rows built per piece of a statement's data: PostgreSQL stores one piece while the next is built


@functools.cache
def _list_adapter(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _validated(items: list[tuple[type[BaseModel], Mapping[str, Any]]]) -> list[BaseModel]:
    """The payloads of `(contract class, field values)` items, in order, each class's validated in one pass."""
    by_model: dict[type[BaseModel], list[int]] = {}
    for i, (model, _) in enumerate(items):
        by_model.setdefault(model, []).append(i)
    if len(by_model) == 1:
        [model] = by_model
        return _list_adapter(model).validate_python([v for _, v in items])
    validated: dict[int, BaseModel] = {}
    for model, at in by_model.items():
        validated.update(zip(at, _list_adapter(model).validate_python([items[i][1] for i in at]), strict=True))
    return [validated[i] for i in range(len(items))]


def _piece(items: list[tuple[type[BaseModel], Mapping[str, Any]]], trace: tuple[str, str | None, str]) -> bytes:
    """COPY data (outbox `COLUMNS`, text format) of some events, in the order given.

    Only backslashes need escaping in the envelope: JSON text holds no raw tab, newline or carriage return.
    """
    correlation_id, causation_id, header_json = trace
    payloads: Sequence[Outgoing]
    if all(item.__class__ is Built for item in items):  # built by their service: not validated (see `events.Built`)
        payloads = items  # type: ignore[assignment]
        _check_built(payloads)
    else:
        payloads = _validated(items)
    event_ids = new_ids(len(payloads))
    envelopes = envelope_json(payloads, event_ids, correlation_id=correlation_id, causation_id=causation_id)
    headers = f"\t{db.copy_text(header_json)}\n"
    names: dict[str, str] = {}  # topics and types, escaped once

    def name(value: str) -> str:
        return names.get(value) or names.setdefault(value, db.copy_text(value))

    lines = []
    for event_id, payload, envelope in zip(event_ids, payloads, envelopes, strict=True):
        spec = registry.spec_for(payload)
        text = envelope.replace("\\", "\\\\")
        key = db.copy_text(spec.key(payload))
        lines.append(f"{event_id}\t{name(spec.topic_for(payload))}\t{key}\t{name(spec.type)}\t{text}{headers}")
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
    each serialised once into the kit's envelope (`events.envelope_json`, as `add_events` writes it). Items that are
    all `events.Built` (a piece of them at a time) are written as built, not validated (checked with
    `HSS_CHECK_BUILT_EVENTS=1`, as `add_events` does). The rows go in
    with COPY, `BULK_CHUNK` a statement, each statement's data built a `PIECE` at a time while PostgreSQL stores the
    piece before (`items` may be a generator: it is read as the data is built).
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


# The backlog from the primary key's two ends: the lowest and the highest waiting id (each an index probe), counted
# exactly only when they are at most `$1` apart. Counting every row (`count(*)`) read the whole outbox on every
# replica, every uncommitted row of a bulk transaction still open too: 240 ms a read with a city import's 400 k
# rows waiting, 10 s of PostgreSQL in a full-city directory copy (issue 16). Ids are handed out one by one in order
# (sequence cache 1, shared migration 007) and the relay deletes in id order, so while many wait `hi - lo + 1` is the
# backlog, plus only the ids of rolled-back transactions and of rows published out of order (a lower id that
# committed late): an upper bound, close. The oldest waiting row is the lowest id's (ids are taken in insert
# order; counted exactly, the oldest of all).
BACKLOG = """
SELECT lo.id AS lo, hi.id AS hi,
       CASE WHEN hi.id - lo.id < $1 THEN (SELECT count(*) FROM outbox WHERE id BETWEEN lo.id AND hi.id) END AS n,
       extract(epoch FROM now() - CASE WHEN hi.id - lo.id < $1
           THEN (SELECT min(created_at) FROM outbox WHERE id BETWEEN lo.id AND hi.id) ELSE lo.created_at END)::float8
           AS age
  FROM (SELECT id, created_at FROM outbox ORDER BY id LIMIT 1) AS lo,
       (SELECT id FROM outbox ORDER BY id DESC LIMIT 1) AS hi
"""
EXACT_BELOW = 10_000  # a backlog spanning fewer ids is counted row by row


async def backlog(pool: asyncpg.Pool | asyncpg.Connection, exact_below: int = EXACT_BELOW) -> tuple[int, float]:
    """Committed rows not yet published (the relay deletes what Kafka acknowledged), and the age in seconds of the
    oldest of them (0 when none): exact while the waiting ids span fewer than `exact_below`, else the span of the
    waiting ids (see `BACKLOG`)."""
    row = await pool.fetchrow(BACKLOG, exact_below)
    if row is None:
        return 0, 0.0
    pending = row["n"] if row["n"] is not None else row["hi"] - row["lo"] + 1
    return int(pending), max(float(row["age"]), 0.0)


async def watch_backlog(pool: asyncpg.Pool, service: str, interval: float) -> None:
    """Keep the backlog gauges true from the database, on every replica, whatever the relay and Kafka are doing.

    While the database is unreachable the gauges keep their last values (readiness already says so).
    """
    while True:
        started = time.monotonic()
        wait = interval
        try:
            pending, age = await backlog(pool)
        except Exception as exc:
            if not db.is_transient(exc):
                raise
        else:
            OUTBOX_PENDING.labels(service).set(pending)
            OUTBOX_OLDEST_AGE.labels(service).set(age)
            # Each end's probe walks the index entries of rows not visible to it (an open bulk transaction's, the
            # relay's last deletes): while it is slow the gauges are read less often, at most a tenth of one
            # backend's time (and at least once a minute). A failed read (the database away) does not stretch it.
            wait = max(interval, min(9 * (time.monotonic() - started), 60.0))
        await asyncio.sleep(wait)
