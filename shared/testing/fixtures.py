"""pytest plugin: start the real stack once per session; give each test its own schema and topic prefix."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import asyncpg
import orjson
import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI

from shared import kafka
from shared.db import service_database_url
from shared.devstack import StackInfo, ensure_up
from shared.devstack.services import SERVICES
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


@pytest.fixture(scope="session")
def stack() -> StackInfo:
    """The real Kafka and PostgreSQL (started by devstack unless the env points at existing ones)."""
    return ensure_up()


@pytest.fixture
def unique() -> str:
    """A short id that keeps this test's schemas and topics apart from every other test's."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def make_settings(stack: StackInfo, unique: str) -> AsyncIterator[Callable[..., Any]]:
    """Build settings of a service class pointed at the real stack, with a private schema and topics.

    The service runs in the test's process, in the cluster's database (`stack.database_url`) under its private
    schema; service processes that devstack starts (`ServiceProcess`, the e2e `CityRun`) each use their own
    database, `shared.db.service_database_url(stack.database_url, name)`, as deployed.

    The test's topics and schemas are dropped afterwards, so a long test run does not pile up thousands of
    partitions in the shared broker.
    """
    made: list[ServiceSettings] = []

    def make(cls: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "env": "test",
            "database_url": stack.database_url,
            "kafka_bootstrap_servers": stack.kafka_bootstrap,
            "db_schema": f"t_{unique}_{cls.service_name}",
            "topic_prefix": f"t{unique}.",
            "topic_partitions": 3,
            "relay_poll_seconds": 0.2,
            "consumer_retry_backoff_seconds": 0.05,
            "http_port": free_port(),
        }
        values.update(overrides)
        settings = cls(**values)
        made.append(settings)
        return settings

    yield make
    await drop_test_resources(stack, f"t{unique}.", {m.db_schema for m in made if m.database_url == stack.database_url})


async def drop_test_resources(stack: StackInfo, topic_prefix: str, schemas: set[str]) -> None:
    """Delete a test's topics (by prefix) and schemas; best effort, never fails the test."""
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    try:
        with contextlib.suppress(Exception):  # cleanup is best effort: it must never mask the test's own outcome
            await admin.start()
            topics = [t for t in await admin.list_topics() if t.startswith(topic_prefix)]
            if topics:
                await admin.delete_topics(topics)
    finally:
        await admin.close()
    if not schemas:
        return
    # In-process services (`make_settings`) keep their schemas in the cluster's database; service processes that
    # devstack starts, each in its own database (`service_database_url`): drop the schemas wherever they are.
    for url in [stack.database_url, *(service_database_url(stack.database_url, n) for n in SERVICES)]:
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(url)
            try:
                for schema in schemas:
                    with contextlib.suppress(Exception):
                        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RunnerEscapes:
    """ASGI wrapper of an app served in the test's own thread: keeps what the test runner raised inside a request.

    A served app shares the test's thread and event loop, so the runner's own exceptions — pytest-timeout's
    `Failed: Timeout` (raised by SIGALRM in whatever frame is running), KeyboardInterrupt — can land inside a
    request handler. They are BaseExceptions: Starlette lets them through and uvicorn answers a plain-text
    `Internal Server Error` 500 and carries on, so the test failed on a "500" the service never made (the access
    matrix's intermittent plain 500 on committees' dissolve: its last phase, running when the 300 s default
    timeout struck on a loaded machine). `serve` raises the kept exception again when it ends: the test fails with
    its real cause."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.escaped: list[BaseException] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        except (Exception, asyncio.CancelledError):
            raise
        except BaseException as exc:
            self.escaped.append(exc)
            raise


@contextlib.asynccontextmanager
async def serve(app: FastAPI, port: int | None = None) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a real local port (lifespan included); yields its base URL. What the test runner
    raised inside a request (a timeout) is raised again on the way out (`RunnerEscapes`)."""
    port = port or free_port()
    guarded = RunnerEscapes(app)
    # The server keeps an idle connection longer than httpx's pool does (5 s): with both at 5 s a test's next request
    # could go out on a connection the server was closing at that moment (httpx.ReadError under load).
    config = uvicorn.Config(
        guarded, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_keep_alive=30
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        if guarded.escaped:
            raise guarded.escaped[0]


async def read_topic(
    bootstrap: str,
    topic: str | list[str],
    *,
    expect: int | None = None,
    timeout: float = 15.0,
    idle: float = 1.0,
    **client: Any,
) -> list[dict[str, Any]]:
    """Every message of a topic (or of several) from the beginning, as dicts with key, value (parsed), headers,
    partition; `client` passes connection settings (e.g. SASL) to the consumer."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", **client
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        tps = await kafka.partitions(consumer, topic)
        if not tps:
            return out
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_new = loop.time()
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out += [_message(r) for r in records]
                if records:
                    last_new = loop.time()
            # Done once `expect` messages came (any number without `expect`) and nothing new for `idle` seconds.
            if len(out) >= (expect or 0) and loop.time() - last_new >= idle:
                break
    finally:
        await consumer.stop()
    return out


async def records_to_end(bootstrap: str, wanted: Callable[[str], bool]) -> AsyncIterator[ConsumerRecord[Any, Any]]:
    """Every record of the topics whose names are `wanted`, from the beginning of each partition to the end it has as
    the read starts (what is appended meanwhile is left out)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        names = sorted(t for t in await consumer.topics() if wanted(t))
        tps = await kafka.partitions(consumer, names) if names else []
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    yield r
    finally:
        await consumer.stop()


async def events_under(bootstrap: str, prefix: str) -> dict[str, dict[str, Any]]:
    """Every distinct event (id → CloudEvent) on the topics named `prefix`..., read to their end; dead-letter topics
    left out.

    The relay deletes the outbox rows Kafka acknowledged, so once a service's outbox is empty Kafka holds every event
    it wrote (a re-sent one twice: once here).
    """
    events: dict[str, dict[str, Any]] = {}
    async for r in records_to_end(bootstrap, lambda t: t.startswith(prefix) and not t.endswith(".dlt")):
        value = _message(r)["value"]
        events[value["id"]] = value
    return events


def _message(r: Any) -> dict[str, Any]:
    """A consumed record as a dict: key, value (parsed JSON when it is), headers, topic, partition, offset."""
    value: Any
    try:
        value = orjson.loads(r.value) if r.value else None
    except orjson.JSONDecodeError:
        value = r.value
    return {
        "key": r.key.decode() if r.key else None,
        "value": value,
        "headers": {k: v.decode(errors="replace") for k, v in (r.headers or ())},
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
    }


async def stable_members(bootstrap: str, group: str) -> int:
    """How many consumers a group has once it is stable (0 while it rebalances or does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [(_error, _group, state, _protocol_type, _protocol, members, *_)] = response.groups
        return len(members) if state == "Stable" else 0
    finally:
        await admin.close()


async def caught_up(bootstrap: str, group: str, topics: list[str]) -> bool:
    """Whether consumer group `group` (its full name) has committed offsets at the end of every partition of
    `topics` that holds messages: it took in everything written to them so far (the kit's consumers commit a poll
    only after its transactions did). For groups that keep no inbox rows to count (`Batch(inbox=False)`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await kafka.partitions(consumer, topics))
        committed = await admin.list_consumer_group_offsets(group)
        return all(committed[tp].offset >= end if tp in committed else end == 0 for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


async def wait_for(check: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Poll an (async) check until it returns something truthy; fail the test on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


@pytest.fixture
async def raw_conn(stack: StackInfo) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection to the stack's database (for assertions across schemas)."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        yield conn
    finally:
        await conn.close()
