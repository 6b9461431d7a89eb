"""Devstack topologies for real: a three-broker cluster that loses a broker, and two replicas of every service."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared import kafka
from shared.devstack import KafkaNode, Stack, StackInfo
from shared.devstack.services import SERVICES
from shared.testing.fixtures import drop_test_resources

# Eight service processes (two of each) or a three-broker cluster start here: like the other fault drills, these
# get 900 s, not the default 300 (at load 25 the replicas alone took longer to start than that).
pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(900)]


@pytest.fixture
def cluster(tmp_path: Path, stack: StackInfo) -> Iterator[Stack]:
    """A private three-broker Kafka on free ports (the session's PostgreSQL is shared)."""
    private = Stack.on_free_ports(tmp_path / "devstack", database_url=stack.database_url)
    private.up(brokers=3)
    try:
        yield private
    finally:
        private.remove()


async def _leader(bootstrap: str, topic: str) -> int:
    """Node id leading partition 0 of `topic`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return int(next(p["leader"] for p in described["partitions"] if p["partition"] == 0))
    finally:
        await admin.close()


async def _produce(producer: AIOKafkaProducer, topic: str, values: list[bytes]) -> None:
    """Send values and wait for every acknowledgement (bounded, so a stuck client fails the test)."""
    futures = [await producer.send(topic, v, key=b"k") for v in values]
    await asyncio.wait_for(asyncio.gather(*futures), 120)


def _producer(bootstrap: str) -> AIOKafkaProducer:
    """acks=all and idempotence, as the relay's producer."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)


async def test_cluster_keeps_acknowledged_writes_when_the_leader_dies(cluster: Stack) -> None:
    bootstrap = cluster.info().kafka_bootstrap
    topic = f"topology-{uuid.uuid4().hex[:8]}"
    # Declared as a service of this cluster declares its topics: with the replication the stack gives services.
    env = cluster.info().env()
    replication, min_insync = int(env["KAFKA_TOPIC_REPLICATION_FACTOR"]), int(env["KAFKA_TOPIC_MIN_INSYNC_REPLICAS"])
    spec = kafka.TopicSpec(topic, partitions=1, replication=replication, min_insync_replicas=min_insync)
    await kafka.ensure_topics(bootstrap, [spec])
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        (config,) = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    assert len(described["partitions"][0]["replicas"]) == 3
    settings = {c[0]: c[1] for c in config.resources[0][4]}
    assert settings["min.insync.replicas"] == "2"

    before, after = [f"before-{i}".encode() for i in range(100)], [f"after-{i}".encode() for i in range(100)]
    producer = _producer(bootstrap)  # one long-lived producer across the fault, as the relay keeps one
    await producer.start()
    try:
        await _produce(producer, topic, before)
        leader = cluster.process(f"kafka#{await _leader(bootstrap, topic)}")
        assert isinstance(leader, KafkaNode)
        leader.kill()  # kill -9 while the partition has acknowledged data
        await _produce(producer, topic, after)  # two in-sync replicas remain: acks=all still succeeds
    finally:
        await producer.stop()

    group = f"topology-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 60
        while len(got) < 200 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                got += [r.value for r in records if r.value is not None]
        await consumer.commit()  # the group's offsets live in __consumer_offsets, RF 3, on the survivors
    finally:
        await consumer.stop()
    assert got == before + after  # nothing lost, nothing twice, in order

    leader.start()  # a killed broker restarts from its own log and catches up into the ISR again
    deadline = time.monotonic() + 60
    while len(await _isr(bootstrap, topic)) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(1)
    assert len(await _isr(bootstrap, topic)) == 3


async def _isr(bootstrap: str, topic: str) -> list[int]:
    """In-sync replicas of partition 0."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return list(described["partitions"][0]["isr"])
    finally:
        await admin.close()


def _holders(stack: Stack) -> dict[str, str | None]:
    return {h.service: h.label for h in stack.relay_holders()}


async def test_two_replicas_of_every_service_share_one_relay_lock(tmp_path: Path, stack: StackInfo) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        "HSS_ENV": "test",
        "HSS_TOPIC_PREFIX": f"r{run}.",
        "LOG_LEVEL": "WARNING",
        **{f"{n.upper()}_DB_SCHEMA": f"r_{run}_{n}" for n in SERVICES},
        **{f"{n.upper()}_TOPIC_PARTITIONS": "3" for n in SERVICES},
    }
    replicas = Stack.on_free_ports(
        tmp_path / "devstack", database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap, service_env=env
    )
    try:
        procs = await asyncio.to_thread(replicas.services_up, 2)
        assert sorted(p.label for p in procs) == sorted(f"{n}#{k}" for n in SERVICES for k in (1, 2))
        assert all(p.answers() for p in procs)

        holders = _holders(replicas)
        assert set(holders) == set(SERVICES)
        assert all(label in (f"{n}#1", f"{n}#2") for n, label in holders.items())

        visits_holder = holders["visits"]
        assert visits_holder is not None
        await asyncio.to_thread(replicas.kill, visits_holder)
        deadline = time.monotonic() + 60
        while _holders(replicas)["visits"] in (None, visits_holder) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
        other = "visits#2" if visits_holder == "visits#1" else "visits#1"
        assert _holders(replicas)["visits"] == other  # the standby took the lock

        lag = replicas.consumer_lag()
        assert {g.removeprefix(f"r{run}.").split(".")[0] for g in lag} == {"outreach", "reporting", "visits"}
    finally:
        await asyncio.to_thread(replicas.remove)
        await drop_test_resources(stack, f"r{run}.", {f"r_{run}_{n}" for n in SERVICES})
