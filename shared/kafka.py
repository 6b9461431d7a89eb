"""Kafka plumbing: declared topics, producer and consumer factories."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError
from murmurhash2 import murmurhash2

from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

_TOPIC_LEVEL = 1  # DescribeConfigs config_source DYNAMIC_TOPIC_CONFIG: set on the topic itself


@dataclass(frozen=True)
class TopicSpec:
    """A topic a service owns and creates at start-up if missing."""

    name: str
    partitions: int = 6
    replication: int = 1
    min_insync_replicas: int = 1  # with acks=all, a write is acknowledged only once this many replicas have it
    retention_ms: int = -1  # events are the reporting replay source: keep them

    def configs(self) -> dict[str, str]:
        """The topic-level configs the service declares."""
        return {"retention.ms": str(self.retention_ms), "min.insync.replicas": str(self.min_insync_replicas)}


def topic_spec(settings: ServiceSettings, name: str, *, partitions: int | None = None) -> TopicSpec:
    """A declared topic with the platform's partitions, replication and min.insync.replicas from `settings`."""
    return TopicSpec(
        name,
        partitions=settings.topic_partitions if partitions is None else partitions,
        replication=settings.topic_replication,
        min_insync_replicas=settings.topic_min_insync,
    )


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


async def close_producer(producer: AIOKafkaProducer, timeout: float = 5.0) -> None:
    """Stop a producer, flushing for at most `timeout` seconds; with no broker to flush to, drop what is pending.

    `stop()` waits until every pending batch is delivered, which an idempotent producer retries forever: with the
    broker down it would never return. Dropping is safe for the relay, which re-sends every row not yet marked.
    """
    stop = asyncio.ensure_future(producer.stop())
    done, _ = await asyncio.wait({stop}, timeout=timeout)
    if done:
        with contextlib.suppress(Exception):
            stop.result()
        return
    # aiokafka has no "close without flushing": cancel its sender task, then stop() finds nothing left to wait for.
    sender = producer._sender
    with contextlib.suppress(BaseException):  # close() re-raises the CancelledError of the task it cancelled
        await sender.close()
    with contextlib.suppress(BaseException):
        await asyncio.wait_for(stop, timeout)


async def close_consumer(consumer: AIOKafkaConsumer, timeout: float = 10.0) -> None:
    """Stop a consumer (leave its group, close its connections) for at most `timeout` seconds.

    aiokafka's `stop()` waits on the group coordinator (a join or leave in flight); a shutdown must never hang on it:
    what is not stopped by then is abandoned, and the group drops the member at its session timeout.
    """
    stop = asyncio.ensure_future(consumer.stop())
    done, _ = await asyncio.wait({stop}, timeout=timeout)
    if not done:
        stop.cancel()
        log.warning("kafka consumer did not stop within %.0fs: abandoned", timeout)
        return
    with contextlib.suppress(Exception):
        stop.result()


MIN_PARTITION_FETCH_BYTES = 64 * 1024


def fetch_min_bytes(wanted: int, per_partition: int) -> int:
    """The bytes the broker waits for before it answers a fetch: `wanted`, but never more than one partition may
    return (`per_partition`, see `partition_fetch_bytes`).

    A fetch asks each partition for at most `per_partition` bytes, so one that may wait for more than a few
    partitions can return is held `max_wait_ms` whenever the backlog sits in a few partitions: reporting (1 MiB,
    136 KiB per partition over 120) waited 500 ms for every poll of a launch's assignments (one topic: 6 x 136 KiB)
    and applied 2,000 events/s where it can apply ten thousand (issue 16). Capped at one partition's share, a
    backlog anywhere answers at once, and a trickle still gathers that much per poll.
    """
    return max(1, min(wanted, per_partition))


def partition_fetch_bytes(buffer_bytes: int, partitions: int) -> int:
    """Bytes to fetch per partition so that a consumer of `partitions` partitions holds at most about
    `buffer_bytes` of fetched records it has not handed out yet.

    The client prefetches: every assigned partition without pending records gets a fetch of up to this many bytes,
    and its records stay in memory until the application polls them. A consumer behind on many partitions at once
    (reporting read every topic of the platform then: 120 partitions) held up to partitions x 4 MiB, about 480 MB,
    and its RSS rose to that high-water mark burst after burst in the soak. Kafka still returns a partition's
    first record batch when it is larger than this, so no partition can stall.
    """
    return max(MIN_PARTITION_FETCH_BYTES, buffer_bytes // max(1, partitions))


def consumer(
    bootstrap: str,
    *,
    group: str,
    client_id: str,
    partitions: int = 1,
    buffer_bytes: int = 16 * 1024 * 1024,
    min_bytes: int = 1,
    max_wait_ms: int = 100,
) -> AIOKafkaConsumer:
    """A consumer that never commits on its own (the inbox commits after the database does) and prefetches at
    most about `buffer_bytes` over the `partitions` it may be assigned (its topics' partitions); the broker answers
    its fetches once `min_bytes` are there (at most one partition's fetch, `fetch_min_bytes`) or after
    `max_wait_ms`."""
    per_partition = partition_fetch_bytes(buffer_bytes, partitions)
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        metadata_max_age_ms=30_000,
        max_partition_fetch_bytes=per_partition,
        fetch_max_bytes=buffer_bytes,
        fetch_min_bytes=fetch_min_bytes(min_bytes, per_partition),
        fetch_max_wait_ms=max_wait_ms,
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
            made_elsewhere: set[str] = set()  # listed too late: made by another replica, an operator, an older release
            if missing:
                resp = await admin.create_topics(
                    [
                        NewTopic(
                            name=t.name,
                            num_partitions=t.partitions,
                            replication_factor=t.replication,
                            topic_configs=t.configs(),
                        )
                        for t in missing
                    ]
                )
                for name, code, *_ in resp.topic_errors:
                    # 36 = TOPIC_ALREADY_EXISTS: created by someone else since the list was read.
                    if code == TopicAlreadyExistsError.errno:
                        made_elsewhere.add(name)
                    elif code != 0:
                        raise RuntimeError(f"cannot create topic {name}: error {code}")
                await _until_led(admin, [t.name for t in missing])
            # A topic made elsewhere was made with its maker's settings, which may lack ours.
            await _declare_min_insync_retrying(admin, [t for t in topics if t.name in existing | made_elsewhere])
            return
        except Exception as exc:  # broker not up yet: retry with backoff
            if attempt == attempts - 1:
                raise
            log.warning("kafka not ready for topic creation: %s", exc)
            await asyncio.sleep(min(0.2 * 2**attempt, 5))
        finally:
            await admin.close()


async def _declare_min_insync_retrying(admin: AIOKafkaAdminClient, topics: list[TopicSpec], attempts: int = 4) -> None:
    """`_declare_min_insync`, tried again a few times when the broker cannot describe or alter a topic yet (one just
    made answers UNKNOWN_TOPIC_OR_PARTITION for a moment); then logged: never a reason not to start (a role without
    the right to describe or alter configs)."""
    for attempt in range(attempts):
        try:
            await _declare_min_insync(admin, topics)
            return
        except Exception as exc:
            if attempt == attempts - 1:
                log.warning("cannot check min.insync.replicas of existing topics: %r", exc)
                return
            await asyncio.sleep(0.2 * 2**attempt)


async def _declare_min_insync(admin: AIOKafkaAdminClient, topics: list[TopicSpec]) -> None:
    """Set the declared min.insync.replicas on topics made before it was declared (or with another value).

    Without this, a platform upgraded on an existing cluster would keep its topics on the broker default (1), and
    an acknowledged event could live on one broker only. Best effort: a broker refusing it is logged, not fatal.
    """
    wanted = {t.name: str(t.min_insync_replicas) for t in topics}
    if not wanted:
        return
    described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name) for name in wanted])
    changes: list[ConfigResource] = []
    for response in described:
        for resource in response.to_object()["resources"]:
            name = resource["resource_name"]
            entries = {e["config_names"]: e for e in resource["config_entries"]}
            current = entries.get("min.insync.replicas")
            if resource["error_code"]:
                raise RuntimeError(f"cannot describe the settings of {name}: error {resource['error_code']}")
            declared = (
                current and current["config_source"] == _TOPIC_LEVEL and current["config_value"] == wanted.get(name)
            )
            if name not in wanted or declared:
                continue
            # AlterConfigs replaces the whole set of a topic's own settings: keep the others set on it.
            own = {n: e["config_value"] for n, e in entries.items() if e["config_source"] == _TOPIC_LEVEL}
            changes.append(
                ConfigResource(ConfigResourceType.TOPIC, name, configs={**own, "min.insync.replicas": wanted[name]})
            )
    if not changes:
        return
    for response in await admin.alter_configs(changes):
        for error_code, _message, _type, name in response.resources:
            if error_code:
                raise RuntimeError(f"cannot set min.insync.replicas on {name}: error {error_code}")
            log.info("min.insync.replicas set on an existing topic", extra={"topic": name})


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


def partition_of(key: bytes, partitions: list[int]) -> int:
    """The partition a keyed record goes to, as the Kafka clients' default partitioner picks it (murmur2 of the key).

    Kafka's murmur2 is MurmurHash2 with this seed; the C one hashes a key in ~1 µs where aiokafka's pure-Python one
    takes ~20-40 µs, most of the relay's CPU at bulk rates.
    """
    return partitions[(murmurhash2(key, 0x9747B28C) & 0x7FFFFFFF) % len(partitions)]


async def partitions(consumer: AIOKafkaConsumer, topics: str | list[str], *, wait: float = 5.0) -> list[TopicPartition]:
    """The partitions of `topics` (in topic order, each sorted), refreshing the consumer's metadata for up to `wait`
    seconds per topic that it does not know yet (one just created); a topic still unknown then has none."""
    out: list[TopicPartition] = []
    for name in [topics] if isinstance(topics, str) else topics:
        parts = consumer.partitions_for_topic(name)
        for _ in range(max(1, int(wait * 10))):
            if parts:
                break
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(name)
            await asyncio.sleep(0.1)
        out += [TopicPartition(name, p) for p in sorted(parts or ())]
    return out
