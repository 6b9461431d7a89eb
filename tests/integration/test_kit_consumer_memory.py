"""The kit's consumer holds a bounded amount of prefetched records, however many partitions it is behind on.

The soak (bench/soak.py) saw reporting's RSS rise at each campaign launch, to 2x after 30 minutes. tracemalloc
snapshots of the replicas showed the growth in aiokafka's fetched record sets: the client prefetches every
assigned partition that has nothing pending, up to `max_partition_fetch_bytes` each, so a group behind on
reporting's 120 partitions could hold 120 x 4 MiB. `kafka.consumer` now divides one buffer over the partitions.
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc

import pytest

from shared import kafka
from tests.integration.kitapp import KitSettings

pytestmark = pytest.mark.integration

PARTITIONS = 24
RECORDS_PER_PARTITION = 40
RECORD_BYTES = 10 * 1024  # random: 24 x 400 KiB waiting, incompressible
BUFFER = 2 * 1024 * 1024


async def test_a_consumer_behind_on_many_partitions_holds_at_most_its_fetch_buffer(make_settings):
    s = make_settings(KitSettings, topic_partitions=PARTITIONS)
    topic = s.topic_prefix + "prefetch"
    await kafka.ensure_topics(s.kafka_bootstrap_servers, [kafka.topic_spec(s, topic)])
    producer = kafka.producer(s.kafka_bootstrap_servers, client_id="prefetch-test")
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            for _ in range(RECORDS_PER_PARTITION):  # one record a batch: the broker returns at least one batch
                await producer.send_and_wait(topic, os.urandom(RECORD_BYTES), partition=partition)
    finally:
        await kafka.close_producer(producer)

    consumer = kafka.consumer(
        s.kafka_bootstrap_servers,
        group=s.topic_prefix + "prefetch",
        client_id="prefetch-test",
        partitions=PARTITIONS,
        buffer_bytes=BUFFER,
    )
    await consumer.start()
    tracemalloc.start()
    try:
        consumer.subscribe([topic])
        first = await consumer.getmany(timeout_ms=30_000, max_records=1)  # joins the group, starts prefetching
        assert sum(len(records) for records in first.values()) == 1
        held = 0
        for _ in range(30):  # let the fetcher prefetch as far as it may (it stops once every partition has some)
            await asyncio.sleep(0.2)
            held = max(held, tracemalloc.get_traced_memory()[0])
        waiting = PARTITIONS * RECORDS_PER_PARTITION * RECORD_BYTES
        # aiokafka keeps about twice what it fetched (the response and the record sets cut from it). Without the
        # budget (4 MiB a partition) it prefetched all 9.4 MiB waiting and held 19 MiB; with it, 4.1 MiB.
        assert held < 3 * BUFFER < 2 * waiting, f"{held / 2**20:.1f} MiB held"
    finally:
        tracemalloc.stop()
        await kafka.close_consumer(consumer)
