"""CloudEvents by the book: relayed events read with the official SDK's Kafka binding; SDK-written ones applied."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.v1.event import CloudEvent

from shared.events import Envelope, occurred_at
from shared.outbox import add_events
from shared.testing.fixtures import read_topic, wait_for
from shared.web import start_runtime, stop_runtime
from tests.integration.kitapp import TOPIC, ItemAdded, KitSettings, spec

pytestmark = pytest.mark.integration

ASYNCAPI = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml").read_text())


async def raw_records(bootstrap: str, topic: str, expect: int, timeout: float = 20.0) -> list[ConsumerRecord]:
    """The first `expect` records of a one-partition topic, bytes as Kafka holds them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        out: list[ConsumerRecord] = []
        async with asyncio.timeout(timeout):
            while len(out) < expect:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    out.extend(records)
        return out[:expect]
    finally:
        await consumer.stop()


def kafka_message(rec: ConsumerRecord) -> ce_kafka.KafkaMessage:
    """A consumed record as the SDK's Kafka binding takes it."""
    return ce_kafka.KafkaMessage(headers=dict(rec.headers), key=rec.key, value=rec.value or b"")


async def test_relayed_events_pass_the_sdk_kafka_binding_and_sdk_events_of_both_modes_are_applied(make_settings):
    settings = make_settings(KitSettings, topic_partitions=1)
    runtime = await start_runtime(spec(settings))
    topic = settings.topic(TOPIC)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        payloads = [ItemAdded(item_id=f"ce-{i}", seq=i, org_path="/c/d", occurred_at=occurred_at()) for i in range(3)]
        async with runtime.pool.acquire() as conn, conn.transaction():
            envelopes = [Envelope.model_validate_json(row.envelope) for row in await add_events(conn, payloads)]
        records = await raw_records(settings.kafka_bootstrap_servers, topic, expect=3)

        # Out: what the relay really sent is a structured-mode CloudEvent to the SDK's auto-detecting reader.
        events: list[Any] = []
        for rec, env in zip(records, envelopes, strict=True):
            headers = dict(rec.headers)
            documented = ASYNCAPI["components"]["schemas"]["EventHeaders"]
            assert set(headers) == set(documented["properties"]) == set(documented["required"])
            assert not [h for h in headers if h.lower().startswith("ce_")], headers
            assert headers["content-type"] == b"application/cloudevents+json"
            assert headers["hss-event-type"] == b"kittest.item.added.v1"
            assert headers["traceparent"].startswith(b"00-")
            event = ce_kafka.from_kafka_event(kafka_message(rec))
            assert event.get_attributes() == ce_kafka.from_structured_event(kafka_message(rec)).get_attributes()
            assert event.get_specversion() == "1.0"
            assert event.get_id() == str(env.id)
            assert event.get_type() == "kittest.item.added.v1"
            assert event.get_source() == "/services/kittest"
            assert event.get_subject() == env.subject == rec.key.decode()
            assert event.get_time() == env.time
            assert event.get_datacontenttype() == "application/json"
            assert event.get_dataschema() == "urn:hss:schema:kittest.item.added.v1"
            assert event.get_extension("correlationid") == env.correlationid
            assert event.get_extension("partitionkey") == rec.key.decode()
            assert event.get_data() == env.data
            events.append(event)

        # Back: the SDK writes events in binary and in structured mode; the kit's inbox consumer applies both.
        sent: dict[str, str] = {}
        for writer in (ce_kafka.to_binary_event, ce_kafka.to_structured_event):
            mode = writer.__name__.split("_")[1]
            item_id = f"sdk-{mode}"
            event = CloudEvent(
                attributes={**events[0].get_attributes(), "id": str(uuid.uuid4()), "subject": item_id},
                data={**events[0].get_data(), "item_id": item_id, "seq": 10},
            )
            message = writer(event, key_mapper=lambda e: e.get_subject())
            if mode == "binary":
                assert message.headers["ce_type"] == b"kittest.item.added.v1"
                assert message.headers["content-type"] == b"application/json"
            else:
                assert message.headers == {"content-type": b"application/cloudevents+json"}
            key = message.key.encode() if isinstance(message.key, str) else message.key
            await producer.send_and_wait(topic, message.value, key=key, headers=list(message.headers.items()))
            sent[item_id] = event.get_id()
        await wait_for(
            lambda: runtime.pool.fetchval("SELECT count(*) = 5 FROM applied"),
            timeout=30,
        )
        rows = await runtime.pool.fetch("SELECT event_id, item_id FROM applied WHERE item_id LIKE 'sdk-%'")
        assert {r["item_id"]: str(r["event_id"]) for r in rows} == sent
        # A binary-mode message missing a required attribute is poison: dead-lettered, not retried forever.
        broken = ce_kafka.to_binary_event(
            CloudEvent(attributes={**events[1].get_attributes(), "id": str(uuid.uuid4())}, data=events[1].get_data())
        )
        without_source = [(k, v) for k, v in broken.headers.items() if k != "ce_source"]
        await producer.send_and_wait(topic, broken.value, key=b"ce-1", headers=without_source)
        dlt = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.kittest.items.dlt", expect=1)
        assert len(dlt) == 1
        assert dlt[0]["headers"]["dlt.error"].startswith("poison: not a valid envelope")
        assert dlt[0]["headers"]["dlt.attempts"] == "1"
        documented = ASYNCAPI["components"]["schemas"]["DeadLetterHeaders"]
        assert {h for h in dlt[0]["headers"] if h.startswith("dlt.")} == set(documented["required"])
    finally:
        await producer.stop()
        await stop_runtime(runtime)
