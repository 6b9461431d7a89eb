"""Departments on Kafka: with its own SCRAM credentials a department reads its own referral topic, and is denied
another department's topic, every internal topic, other consumer groups and writing."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
)

from shared import kafka
from shared.contracts import outreach as out
from shared.contracts.common import Category, Department, Severity
from shared.devstack import Stack, StackInfo, department_access, departments
from shared.devstack.kafka import KafkaCluster, KafkaNode, fetch_jars
from shared.events import new_envelope, registry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")), reason="department users exist on the devstack broker only"
    ),
]

INTERNAL = sorted({t for s in registry.all() if not s.public for t in s.topics})
# Where the personal and case data flows: the department must see none of it.
SENSITIVE = ["committees.student.events", "outreach.case.events", "visits.finding.events"]


def referral(department: Department, n: int) -> out.ReferralRequested:
    now = datetime.now(UTC)
    return out.ReferralRequested(
        referral_id=f"ref-{department.value}-{n}",
        case_id=f"case-{n}",
        department=department,
        category=Category.LEFT_BEHIND,
        urgency=Severity.HIGH,
        org_path="/620400/620402/s0001",
        occurred_at=now,
        acknowledge_by=now + timedelta(days=2),
    )


@pytest.fixture(scope="module")
async def granted(stack: StackInfo) -> AsyncIterator[str]:
    """A fresh topic prefix with the department topics and some internal ones, ACLs granted for that prefix."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    topics = [*out.REFERRAL_TOPICS, *SENSITIVE]
    await kafka.ensure_topics(stack.kafka_bootstrap, [kafka.TopicSpec(prefix + t, partitions=2) for t in topics])
    kafka_component = Stack.from_env().kafka()
    broker = kafka_component.nodes[0] if isinstance(kafka_component, KafkaCluster) else kafka_component
    assert isinstance(broker, KafkaNode)
    program = broker._java_cmd(fetch_jars(broker.log), str(departments.PROGRAM))
    lines = [d.value for d in Department]
    await asyncio.to_thread(
        departments.run_access_program, program, stack.kafka_bootstrap, lines, log=broker.log, topic_prefix=prefix
    )
    try:
        yield prefix
    finally:
        await asyncio.to_thread(
            departments.run_access_program,
            program,
            stack.kafka_bootstrap,
            lines,
            log=broker.log,
            topic_prefix=prefix,
            revoke=True,
        )


async def publish(stack: StackInfo, prefix: str, payloads: list[Any]) -> None:
    """Publish as outreach does: internal listener, department topic chosen by the payload."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for p in payloads:
            spec = registry.spec_for(p)
            env = new_envelope(spec, p, correlation_id="acl-test", causation_id=None)
            await producer.send_and_wait(
                prefix + spec.topic_for(p), env.model_dump_json().encode(), key=spec.key(p).encode(), partition=0
            )
    finally:
        await producer.stop()


async def consume(access: departments.ClientSettings, topic: str, group: str, expect: int) -> list[dict[str, Any]]:
    """Read with a consumer group and commit, as a department's subscriber does; raises what the broker refuses."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
        **access.aiokafka(),
    )
    seen: list[dict[str, Any]] = []
    try:
        await consumer.start()
        async with asyncio.timeout(30):
            while len(seen) < expect:
                batch = await consumer.getmany(timeout_ms=500)
                seen += [{"key": r.key.decode(), "topic": r.topic} for rs in batch.values() for r in rs]
            await consumer.commit()
    finally:
        await consumer.stop()
    return seen


async def test_a_department_reads_only_its_own_referrals(stack: StackInfo, granted: str):
    assert set(SENSITIVE) <= set(INTERNAL)
    prefix = granted
    await publish(
        stack,
        prefix,
        [referral(Department.CIVIL_AFFAIRS, 1), referral(Department.HEALTH, 2), referral(Department.CIVIL_AFFAIRS, 3)],
    )
    civil = department_access("civil_affairs")
    own = prefix + out.referral_topic("civil_affairs")

    got = await consume(civil, own, f"civil_affairs.{prefix}sub", expect=2)
    assert sorted(m["key"] for m in got) == ["ref-civil_affairs-1", "ref-civil_affairs-3"]
    assert {m["topic"] for m in got} == {own}

    # Another department's referrals, and every internal topic: denied, with or without a group.
    for topic in [prefix + out.referral_topic("health"), *(prefix + t for t in SENSITIVE)]:
        with pytest.raises(TopicAuthorizationFailedError):
            await consume(civil, topic, f"civil_affairs.{prefix}sneak", expect=1)
    visible = await listed(civil)
    assert own in visible and not visible & {prefix + t for t in [*INTERNAL, *out.REFERRAL_TOPICS] if prefix + t != own}
    assert {prefix + t for t in SENSITIVE} <= await listed({"bootstrap_servers": stack.kafka_bootstrap})

    # Its own topic under someone else's consumer group: denied.
    with pytest.raises(GroupAuthorizationFailedError):
        await consume(civil, own, f"health.{prefix}sub", expect=1)

    # Departments read; they never write.
    producer = AIOKafkaProducer(**civil.aiokafka())
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(own, b"{}")
    finally:
        await producer.stop()


async def test_a_wrong_password_gets_nothing(stack: StackInfo, granted: str):
    civil = department_access("civil_affairs")
    wrong = departments.ClientSettings("civil_affairs", civil.bootstrap, "not-the-password")
    with pytest.raises((KafkaError, KafkaConnectionError)):
        await consume(wrong, granted + out.referral_topic("civil_affairs"), "civil_affairs.x", expect=1)


async def listed(client: departments.ClientSettings | dict[str, Any]) -> set[str]:
    """The topics a client's metadata shows it."""
    kwargs = client.aiokafka() if isinstance(client, departments.ClientSettings) else client
    consumer = AIOKafkaConsumer(request_timeout_ms=10_000, **kwargs)
    try:
        await consumer.start()
        return set(await consumer.topics())
    finally:
        await consumer.stop()
