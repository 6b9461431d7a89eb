"""The kit's bulk outbox insert: the same envelopes as `add_events`, the contract enforced, order kept."""

from __future__ import annotations

import io
from datetime import date

import asyncpg
import pydantic
import pytest

from shared import context, db
from shared.events import Envelope, occurred_at
from shared.outbox import BULK_CHUNK, add_bulk, add_events, backlog
from shared.testing.fixtures import read_topic
from shared.web import start_runtime, stop_runtime
from tests.integration.kitapp import TOPIC, ItemAdded, KitSettings, spec

pytestmark = pytest.mark.integration


async def test_bulk_envelopes_are_the_kits_and_keep_order(make_settings):
    runtime = await start_runtime(spec(make_settings(KitSettings)))
    try:
        runtime.relay.stop()  # the rows stay in the outbox for this test to read
        at = occurred_at()
        n = BULK_CHUNK + 5  # more than one statement
        token = context.set_current(context.TraceContext("corr-1", trace_id=context.new_trace_id()))
        try:
            async with runtime.pool.acquire() as conn, conn.transaction():
                one = await add_events(conn, [ItemAdded(item_id="single", seq=-1, org_path="/c", occurred_at=at)])
                written = await add_bulk(
                    conn,
                    [
                        (ItemAdded, {"item_id": f"i{k}", "seq": str(k), "org_path": "/c/d", "occurred_at": at})
                        for k in range(n)
                    ],
                )
        finally:
            context.reset(token)
        assert written == n
        rows = await runtime.pool.fetch("SELECT topic, key, type, envelope FROM outbox ORDER BY id")
        single, bulk = rows[0]["envelope"], [r["envelope"] for r in rows[1:]]
        assert single["id"] == one[0].event_id
        assert [r["key"] for r in rows[1:]] == [f"i{k}" for k in range(n)]  # in the order given
        assert {(r["topic"], r["type"]) for r in rows} == {(TOPIC, "kittest.item.added.v1")}
        for k, env in enumerate(bulk):
            Envelope.model_validate(env)
            assert set(env) == set(single)  # the same attributes as the kit's one-by-one envelope
            assert {a: env[a] for a in ("source", "type", "dataschema", "correlationid", "causationid")} == {
                a: single[a] for a in ("source", "type", "dataschema", "correlationid", "causationid")
            }
            assert env["subject"] == f"i{k}"
            assert env["data"] == {
                "item_id": f"i{k}",
                "seq": k,
                "org_path": "/c/d",
                "occurred_at": single["data"]["occurred_at"],
            }
        assert len({env["id"] for env in bulk}) == n  # every event its own id

        # The contract is enforced: a bad value fails the write, and nothing of it is left.
        with pytest.raises(pydantic.ValidationError):
            async with runtime.pool.acquire() as conn, conn.transaction():
                await add_bulk(
                    conn, [(ItemAdded, {"item_id": "x", "seq": "not a number", "org_path": "/c", "occurred_at": at})]
                )
        assert await runtime.pool.fetchval("SELECT count(*) FROM outbox") == n + 1
    finally:
        await stop_runtime(runtime)


async def test_bulk_rows_keep_every_character_and_reach_kafka_as_written(make_settings):
    """The bulk path writes with COPY's text format: tabs, newlines, backslashes, quotes and `\\N` in keys and data
    must arrive as written, and the relay (woken by the COPY) publishes them."""
    settings = make_settings(KitSettings)
    runtime = await start_runtime(spec(settings))
    odd = ["tab\there", "line\nbreak\r", "back\\slash \\N", 'quote " \\" end', "\\", "汉字 ✓"]
    at = occurred_at()
    try:
        async with runtime.pool.acquire() as conn, conn.transaction():
            await add_bulk(
                conn,
                [(ItemAdded, {"item_id": v, "seq": k, "org_path": "/c", "occurred_at": at}) for k, v in enumerate(odd)],
            )
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(TOPIC), expect=len(odd))
        assert sorted((m["key"], m["value"]["data"]["item_id"], m["value"]["data"]["seq"]) for m in messages) == sorted(
            (v, v, k) for k, v in enumerate(odd)
        )
        assert all(m["value"]["subject"] == m["key"] for m in messages)
    finally:
        await stop_runtime(runtime)


async def test_copy_rows_round_trips_every_value_through_copy(stack):
    """`db.copy_rows` (COPY text data built without a connection): what PostgreSQL stores is exactly the values
    given: NULLs, booleans, dates, text with tabs, newlines, backslashes, quotes and non-ASCII, and text arrays
    whose elements hold quotes, commas, braces and backslashes."""
    rows = [
        ("plain", None, True, date(2012, 2, 29), ["a", "b"]),
        ('tab\there\nnew "q" \\N \\ back\rcr', "张三 ✓", False, None, ['q"uote', "co,mma", "{br}", "back\\slash", ""]),
        ("\\", "", None, date(1990, 1, 1), []),
    ]
    conn = await asyncpg.connect(stack.database_url)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE t (a text, b text, c boolean, d date, e text[]) ON COMMIT DROP")
            await conn.copy_to_table("t", source=io.BytesIO(db.copy_rows(rows)), format="text")
            back = [tuple(r) for r in await conn.fetch("SELECT a, b, c, d, e FROM t")]
    finally:
        await conn.close()
    assert back == rows


async def test_backlog_gauge_exact_when_small_and_the_id_span_when_large(make_settings):
    """The backlog gauge's reading (`outbox.backlog`): every waiting row counted while their ids span fewer than
    its limit, the span of the waiting ids beyond it (never below the truth: the ids between are waiting or gone),
    nothing for an empty outbox; the age is the oldest waiting row's."""
    runtime = await start_runtime(spec(make_settings(KitSettings)))
    try:
        runtime.relay.stop()
        assert await backlog(runtime.pool) == (0, 0.0)
        at = occurred_at()
        async with runtime.pool.acquire() as conn, conn.transaction():
            rows = [(ItemAdded, {"item_id": f"i{k}", "seq": k, "org_path": "/c", "occurred_at": at}) for k in range(40)]
            await add_bulk(conn, rows)
        ids = [r["id"] for r in await runtime.pool.fetch("SELECT id FROM outbox ORDER BY id")]
        # Published out of order in the middle (a late-committing lower id's neighbours): 30 wait over a span of 40.
        await runtime.pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids[5:15])
        await runtime.pool.execute("UPDATE outbox SET created_at = now() - interval '90 seconds' WHERE id = $1", ids[0])
        pending, age = await backlog(runtime.pool, exact_below=100)
        assert pending == 30 and 89 < age < 120
        pending, age = await backlog(runtime.pool, exact_below=10)
        assert pending == 40 and 89 < age < 120  # the span: an upper bound, the lowest id the oldest
        await runtime.pool.execute("DELETE FROM outbox WHERE id <= $1", ids[20])
        assert (await backlog(runtime.pool, exact_below=10))[0] == 19  # both ends move with the relay's deletes
    finally:
        await stop_runtime(runtime)
