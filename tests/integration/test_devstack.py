"""Devstack starts real Kafka and PostgreSQL and reuses them on the next call."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.devstack import StackInfo, ensure_up, status

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack() -> StackInfo:
    """The shared dev stack, started if needed."""
    return ensure_up()


def _pids() -> dict[str, int | None]:
    """Pid of each component devstack manages (None for external ones)."""
    return {row.name: row.pid for row in status()}


def test_second_ensure_up_reuses_running_stack(stack: StackInfo) -> None:
    before = _pids()

    again = ensure_up()

    assert again == stack
    assert _pids() == before
    assert all(row.up for row in status())


async def test_ensure_up_works_inside_an_event_loop(stack: StackInfo) -> None:
    assert ensure_up() == stack


async def test_postgres_answers(stack: StackInfo) -> None:
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_kafka_round_trip(stack: StackInfo) -> None:
    topic = f"devstack-test-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"hello", key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka_bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), timeout=30)
        finally:
            await consumer.stop()
        assert (message.key, message.value) == (b"k", b"hello")
    finally:
        await admin.delete_topics([topic])
        await admin.close()
