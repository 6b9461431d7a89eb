"""Kafka plumbing: declared topics, producer and consumer factories."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    """A topic a service owns and creates at start-up if missing."""

    name: str
    partitions: int = 6
    replication: int = 1
    retention_ms: int = -1  # events are the reporting replay source: keep them


def producer(bootstrap: str, *, client_id: str) -> AIOKafkaProducer:
    """An idempotent producer with acks=all, batching for throughput."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=512 * 1024,
        request_timeout_ms=15000,
    )


def consumer(bootstrap: str, *, group: str, client_id: str) -> AIOKafkaConsumer:
    """A consumer that never commits on its own; the inbox commits after the database does."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        metadata_max_age_ms=30_000,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )


async def ensure_topics(bootstrap: str, topics: list[TopicSpec], *, attempts: int = 30) -> None:
    """Create the declared topics that do not exist yet; waits for the broker to answer."""
    if not topics:
        return
    for attempt in range(attempts):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t.name not in existing]
            if missing:
                resp = await admin.create_topics(
                    [
                        NewTopic(
                            name=t.name,
                            num_partitions=t.partitions,
                            replication_factor=t.replication,
                            topic_configs={"retention.ms": str(t.retention_ms)},
                        )
                        for t in missing
                    ]
                )
                for name, code, *_ in resp.topic_errors:
                    # 36 = TOPIC_ALREADY_EXISTS: another replica created it first.
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise RuntimeError(f"cannot create topic {name}: error {code}")
                await _until_led(admin, [t.name for t in missing])
            return
        except Exception as exc:  # broker not up yet: retry with backoff
            if attempt == attempts - 1:
                raise
            log.warning("kafka not ready for topic creation: %s", exc)
            await asyncio.sleep(min(0.2 * 2**attempt, 5))
        finally:
            await admin.close()


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 15.0) -> None:
    """Wait until the metadata shows every partition of the new topics with a leader.

    A consumer that subscribes before that sees no such topic and only finds it at its next metadata refresh.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        topics = await admin.describe_topics(names)
        if all(
            t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in topics
        ):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"topics {names} have no leaders after {timeout}s")
        await asyncio.sleep(0.1)
