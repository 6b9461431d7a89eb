"""CPU per event of the kit's hot paths, without Kafka or PostgreSQL: building outbox rows, the relay packing
rows into Kafka batches, the inbox parsing a record and running a no-op handler. CPU time (process_time), best of
7 passes over 2,000 ~1 KB events, so a loaded machine disturbs it less than wall-clock benchmarks.

Run: .venv/bin/python bench/kit_hotpath.py (tracing off, as without OTEL_EXPORTER_OTLP_ENDPOINT). To compare two
versions of the kit, run it with PYTHONPATH pointing at each checkout.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, ClassVar

import orjson
from aiokafka import AIOKafkaProducer, ConsumerRecord

from shared import outbox
from shared.events import Payload, event_type, occurred_at
from shared.inbox import InboxConsumer
from shared.relay import Relay
from shared.settings import ServiceSettings

N = 2000
PASSES = 7


class HotSettings(ServiceSettings):
    service_name: ClassVar[str] = "hotpath"


@event_type("hotpath.blob.added.v1", topic="hotpath.blob.events", key="blob_id")
class BlobAdded(Payload):
    """A ~1 KB bench event."""

    blob_id: str
    n: int
    pad: str
    occurred_at: datetime


class RowsOnly:
    """A connection whose fetch returns the outbox rows (the relay's only query here)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    async def fetch(self, *_: Any) -> list[dict[str, Any]]:
        return self.rows


class NoBroker(AIOKafkaProducer):
    """The real producer's batch builder; sending is acknowledged at once."""

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2, 3, 4, 5}

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def best(work: Callable[[], Awaitable[None]]) -> float:
    """Microseconds of CPU per event of the fastest pass."""
    times = []
    for _ in range(PASSES):
        started = time.process_time()
        await work()
        times.append(time.process_time() - started)
    return min(times) / N * 1e6


async def main() -> None:
    warnings.simplefilter("ignore")  # the producer is never started, so never stopped
    settings = HotSettings()
    payloads = [BlobAdded(blob_id=f"b{i % 100}", n=i, pad="x" * 800, occurred_at=occurred_at()) for i in range(N)]
    rows = outbox.outbox_rows(payloads)
    stored = [
        {
            "id": i,
            "event_id": r[0],
            "topic": r[1],
            "key": r[2],
            "type": r[3],
            "envelope": r[4],
            "headers": orjson.loads(r[5]),
        }
        for i, r in enumerate(rows)
    ]
    records = [
        ConsumerRecord(
            settings.topic(r[1]), 0, i, 0, 0, r[2].encode(), r[4].encode(), None, 0, 0,
            [
                ("content-type", b"application/cloudevents+json"),
                ("traceparent", orjson.loads(r[5])["traceparent"].encode()),
            ],
        )
        for i, r in enumerate(rows)
    ]  # fmt: skip
    relay, producer = Relay(settings), NoBroker(bootstrap_servers="127.0.0.1:1")

    async def noop(conn: Any, event: Any) -> None:
        return None

    consumer = InboxConsumer(settings, None, "hotpath.apply", {"hotpath.blob.added.v1": noop})

    async def build_rows() -> None:
        outbox.outbox_rows(payloads)

    async def relay_send() -> None:
        await relay.send_batch(RowsOnly(stored), producer, [])

    async def inbox_apply() -> None:
        for rec in records:
            event = consumer._parse(rec)
            assert event is not None
            await consumer._handle(None, rec, event)

    print(f"CPU per event, best of {PASSES} passes over {N:,} events (µs):")
    for name, work in (("outbox rows", build_rows), ("relay send", relay_send), ("inbox parse+handle", inbox_apply)):
        print(f"  {name:20s} {await best(work):7.2f}")


if __name__ == "__main__":
    asyncio.run(main())
