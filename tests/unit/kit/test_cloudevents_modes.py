"""The inbox reads CloudEvents in both Kafka content modes, as the official SDK writes them."""

from __future__ import annotations

import pytest
from aiokafka import ConsumerRecord
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent

from shared.events import Envelope, new_envelope, registry
from shared.inbox import envelope_of
from tests.unit.kit.test_kit_rules import finding


def record(message: ce_kafka.KafkaMessage) -> ConsumerRecord:
    key = message.key.encode() if isinstance(message.key, str) else message.key
    return ConsumerRecord(
        "t", 0, 0, 0, 0, key, message.value, None, 0, len(message.value), list(message.headers.items())
    )


def envelope() -> Envelope:
    payload = finding()
    return new_envelope(registry.spec_for(payload), payload, correlation_id="corr", causation_id="cause")


def sdk_event(env: Envelope) -> CloudEvent:
    attributes = env.model_dump(exclude={"data"})
    return CloudEvent(attributes={**attributes, "id": str(env.id)}, data=env.data)


def test_structured_binary_and_header_less_records_give_the_same_envelope():
    env = envelope()
    binary = ce_kafka.to_binary_event(sdk_event(env), key_mapper=lambda e: e.get_subject())
    structured = ce_kafka.to_structured_event(sdk_event(env))
    bare = ce_kafka.KafkaMessage(headers={}, key=b"stu-9", value=env.model_dump_json().encode())
    assert "ce_specversion" in binary.headers and binary.headers["content-type"] == b"application/json"
    for message in (binary, structured, bare):
        assert envelope_of(record(message)) == env


@pytest.mark.parametrize("header", ["ce_id", "ce_time", "ce_source", "ce_type"])
def test_binary_record_missing_a_required_attribute_is_refused(header):
    binary = ce_kafka.to_binary_event(sdk_event(envelope()))
    del binary.headers[header]
    with pytest.raises((ValueError, BaseCloudEventException)):
        envelope_of(record(binary))
