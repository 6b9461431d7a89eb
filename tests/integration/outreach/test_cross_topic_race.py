"""Issue 12 item 4: a child and their family on two topics at once, in parallel lanes and in two replicas.

Committees emits `student.registered` with `family.registered` (an import) or with `family.changed` (a student
registered into a known family) from one transaction; they land on different topics, so in different lanes of a
poll or in different replicas. Each of outreach's directory handlers reads the other's row (the family's flag, the
students' classes): without the entity lock of `shared.inbox.Locked` neither sees the other's uncommitted row and
a left-behind child is never registered. The fault matrix of issue 12 (tests/faults/) refers to this test.
"""

from __future__ import annotations

import asyncio
from functools import partial

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import BaseModel

from services.outreach.app import build_spec
from services.outreach.clock import ManualClock
from services.outreach.handlers import DIRECTORY_GROUP
from services.outreach.settings import OutreachSettings
from shared.contracts.committees import FamilyChanged, FamilyFacts, StudentRegistered
from shared.events import registry
from shared.testing.fixtures import wait_for
from shared.web import Runtime, start_runtime, stop_runtime
from tests.integration.outreach.helpers import class_path, envelope, family, now

pytestmark = pytest.mark.integration

FAMILIES = 300  # per round; half of them at home (their children must stay out of the group)
ROUNDS = 2


def _student(i: int, r: int, sibling: int = 0) -> StudentRegistered:
    fid = f"fam-{r}-{i}"
    return StudentRegistered(
        student_id=f"stu-{r}-{i}-{sibling}", class_id="c2", org_path=class_path(), family_id=fid, occurred_at=now()
    )


def _changed(fid: str, students: list[str], *, away: bool) -> FamilyChanged:
    facts = family(fid, students, away=away)
    return FamilyChanged(**facts.model_dump())


async def _send(producer: AIOKafkaProducer, settings: OutreachSettings, payload: BaseModel) -> None:
    spec = registry.spec_for(payload)
    await producer.send_and_wait(
        settings.topic(spec.topic),
        envelope(payload).model_dump_json().encode(),
        key=spec.key(payload).encode(),
    )


async def _publish(
    producer: AIOKafkaProducer, settings: OutreachSettings, kids: list[StudentRegistered], fam: FamilyFacts, order: int
) -> None:
    """A family's events as committees emits them from one transaction: students first, family first or at once."""
    if order == 0:
        for k in kids:
            await _send(producer, settings, k)
        await _send(producer, settings, fam)
    elif order == 1:
        await _send(producer, settings, fam)
        for k in kids:
            await _send(producer, settings, k)
    else:
        await asyncio.gather(*(_send(producer, settings, p) for p in [*kids, fam]))


async def applied(pool: asyncpg.Pool, n: int) -> bool:
    """Whether the directory group has taken in at least `n` events (each is in the inbox once)."""
    return bool(await pool.fetchval("SELECT count(*) >= $2 FROM inbox WHERE consumer = $1", DIRECTORY_GROUP, n))


async def _both_replicas_in_group(settings: OutreachSettings) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([settings.topic_prefix + DIRECTORY_GROUP])
        [(_error, _group, state, _protocol_type, _protocol, members, *_)] = response.groups
        return bool(state == "Stable" and len(members) == 2)
    finally:
        await admin.close()


async def test_every_left_behind_child_is_registered_once_whatever_the_interleaving(make_settings):
    # Six partitions and two lanes per replica: most pairs land in different lanes or different replicas.
    settings = make_settings(
        OutreachSettings, scheduler_enabled=False, topic_partitions=6, consumer_parallelism=2, consumer_batch_size=500
    )
    replicas: list[Runtime] = [await start_runtime(build_spec(settings, ManualClock())) for _ in range(2)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        pool = replicas[0].pool
        await wait_for(lambda: _both_replicas_in_group(settings), timeout=60, interval=0.5)
        expected: set[str] = set()  # every child of a family whose parents work away
        sent = 0

        for r in range(ROUNDS):
            # Families registered without students first (the committees API): their student.registered then comes
            # with a family.changed. The other half arrive as an import: student.registered + family.registered.
            known = [i for i in range(FAMILIES) if i % 2 == 0]
            for i in known:
                await _send(producer, settings, family(f"fam-{r}-{i}", [], away=i % 4 != 0))
            sent += len(known)
            await wait_for(partial(applied, pool, sent), timeout=60, interval=0.2)

            pairs: list[tuple[list[StudentRegistered], FamilyFacts, int]] = []
            for i in range(FAMILIES):
                fid, away = f"fam-{r}-{i}", i % 4 not in (0, 1)
                kids = [_student(i, r, k) for k in range(1 + i % 2)]  # import families have two children
                ids = [k.student_id for k in kids]
                fam = _changed(fid, ids, away=away) if i in known else family(fid, ids, away=away)
                if away:
                    expected |= set(ids)
                sent += len(kids) + 1
                pairs.append((kids, fam, i % 3))
            await asyncio.gather(*(_publish(producer, settings, kids, fam, order) for kids, fam, order in pairs))
            await wait_for(partial(applied, pool, sent), timeout=90, interval=0.2)

        directory = [next(c for c in rt.consumers if c.group == DIRECTORY_GROUP) for rt in replicas]
        assert all(c.applied > 0 for c in directory), "both replicas must have applied directory events"
        assert sum(c.dead_lettered for c in directory) == 0

        members = await pool.fetch(
            "SELECT student_id FROM group_memberships WHERE grp = 'left_behind' AND ended_at IS NULL"
        )
        registered = await pool.fetch(
            "SELECT envelope->'data'->>'student_id' AS student_id, count(*) AS n FROM outbox"
            " WHERE type = 'outreach.group.registered.v1' GROUP BY 1"
        )
        missing = expected - {m["student_id"] for m in members}
        assert not missing, f"{len(missing)} of {len(expected)} left-behind children never registered"
        assert {m["student_id"] for m in members} == expected  # no child of a family at home
        assert {r["student_id"]: r["n"] for r in registered} == dict.fromkeys(expected, 1)  # one event each
    finally:
        await producer.stop()
        for rt in replicas:
            await stop_runtime(rt)
