"""Feeding outreach real contract events through the real (prefixed) topics, as visits and committees would."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from services.outreach.settings import OutreachSettings
from shared.contracts.committees import FamilyRegistered, StaffRegistered, StudentRegistered
from shared.contracts.common import Category, LivingArrangement, Severity, StaffRole
from shared.contracts.visits import FindingRecorded
from shared.events import Envelope, new_envelope, registry
from shared.kafka import TopicSpec, ensure_topics
from shared.testing.fixtures import events_under, wait_for

CITY, DISTRICT = "/620400", "/620400/620402"


def school(n: str = "s001") -> str:
    return f"{DISTRICT}/{n}"


def class_path(cls: str = "c2", sch: str = "s001") -> str:
    return f"{school(sch)}/g3/{cls}"


def envelope(payload: BaseModel) -> Envelope:
    return new_envelope(registry.spec_for(payload), payload, correlation_id=str(uuid.uuid4()), causation_id=None)


async def publish(settings: OutreachSettings, items: Sequence[BaseModel | Envelope]) -> list[Envelope]:
    """Produce contract events (or ready envelopes, e.g. to redeliver one) to their physical topics, in order."""
    envs = [i if isinstance(i, Envelope) else envelope(i) for i in items]
    topics = {settings.topic(_topic(e)) for e in envs}
    await ensure_topics(
        settings.kafka_bootstrap_servers, [TopicSpec(t, settings.topic_partitions, 1) for t in sorted(topics)]
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for e in envs:
            spec = registry.spec(e.type)
            payload = spec.model.model_validate(e.data)
            await producer.send(
                settings.topic(spec.topic_for(payload)),
                value=e.model_dump_json().encode(),
                key=spec.key(payload).encode(),
                headers=[("content-type", b"application/cloudevents+json")],
            )
        await producer.flush()
    finally:
        await producer.stop()
    return envs


def _topic(e: Envelope) -> str:
    """The physical topic of an envelope (a template like `x.{department}.events` filled in from its payload)."""
    spec = registry.spec(e.type)
    return spec.topic_for(spec.model.model_validate(e.data))


def now() -> datetime:
    return datetime.now(UTC)


def staff(
    staff_id: str, *roles: StaffRole, at: str | None = None, head: str | None = None, when: datetime | None = None
) -> StaffRegistered:
    return StaffRegistered(
        staff_id=staff_id,
        org_path=at or school(),
        roles=list(roles),
        class_ids=[head] if head else [],
        head_class_id=head,
        occurred_at=when or now(),
    )


def student(student_id: str, cls: str = "c2", family_id: str | None = None) -> StudentRegistered:
    return StudentRegistered(
        student_id=student_id,
        class_id=cls,
        org_path=class_path(cls),
        family_id=family_id or f"fam-{student_id}",
        occurred_at=now(),
    )


def family(family_id: str, student_ids: list[str], *, away: bool) -> FamilyRegistered:
    return FamilyRegistered(
        family_id=family_id,
        student_ids=student_ids,
        guardian_ids=[f"g-{family_id}"],
        parents_work_away=away,
        living_arrangement=LivingArrangement.GRANDPARENTS if away else LivingArrangement.BOTH_PARENTS,
        occurred_at=now(),
    )


def school_staff() -> list[BaseModel]:
    """A school with a class teacher of c2, a mental-health teacher and a vice principal."""
    return [
        staff("t-head-c2", StaffRole.CLASS_TEACHER, StaffRole.SUBJECT_TEACHER, head="c2"),
        staff("t-head-c9", StaffRole.CLASS_TEACHER, head="c9"),
        staff("mh-1", StaffRole.MENTAL_HEALTH_TEACHER),
        staff("vp-1", StaffRole.VICE_PRINCIPAL),
    ]


def finding(
    student_id: str,
    category: Category,
    severity: Severity,
    *,
    cls: str = "c2",
    recorded_at: datetime | None = None,
    finding_id: str | None = None,
) -> FindingRecorded:
    return FindingRecorded(
        finding_id=finding_id or f"f-{uuid.uuid4()}",
        student_id=student_id,
        visit_id=f"v-{uuid.uuid4()}",
        campaign_id="camp-1",
        teacher_id="t-visitor",
        category=category,
        severity=severity,
        org_path=class_path(cls),
        visited_on=(recorded_at or now()).date(),
        recorded_at=recorded_at or now(),
    )


async def written(settings: OutreachSettings, pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    """Every event outreach wrote (id → CloudEvent), once its outbox is empty: the relay deletes what Kafka acked."""
    await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"), timeout=60)
    return await events_under(settings.kafka_bootstrap_servers, settings.topic("outreach."))


async def open_cases_per_child(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT student_id, count(*) AS n FROM cases WHERE state <> 'closed' GROUP BY student_id")
    return {r["student_id"]: r["n"] for r in rows}


def by_type(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        out.setdefault(m["value"]["type"], []).append(m)
    return out
