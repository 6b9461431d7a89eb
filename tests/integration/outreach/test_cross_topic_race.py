"""Issue 12 item 4: events about one child or family on different topics at once, in parallel lanes and replicas.

Committees emits `student.registered` with `family.registered` (an import) or with `family.changed` (a student
registered into a known family) from one transaction; they land on different topics, so in different lanes of a
poll or in different replicas. Each of outreach's directory handlers reads the other's row (the family's flag, the
students' classes): without the entity lock of `shared.inbox.Locked` neither sees the other's uncommitted row and
a left-behind child is never registered. Likewise a finding (visits' topic, the findings group) places the child's
group membership in the class the directory copy knows, while a move (committees' topic, the directory group)
moves the child's memberships. The fault matrix of issue 12 (tests/faults/) refers to these tests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from functools import partial

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from services.outreach.app import build_spec
from services.outreach.handlers import DIRECTORY_GROUP, FINDINGS_GROUP
from services.outreach.settings import OutreachSettings
from shared.clock import ManualClock
from shared.contracts.committees import FamilyChanged, FamilyFacts, StudentChanged, StudentRegistered
from shared.contracts.common import Category, Severity
from shared.events import registry
from shared.inbox import InboxConsumer
from shared.testing.fixtures import caught_up, stable_members, wait_for
from shared.web import Runtime, start_runtime, stop_runtime
from tests.integration.outreach.helpers import class_path, envelope, family, finding, now, written

pytestmark = pytest.mark.integration

FAMILIES = 300  # per round; half of them at home (their children must stay out of the group)
ROUNDS = 2


@dataclass
class Replicas:
    """Two replicas of outreach on one schema and consumer groups (two lanes each), and a producer."""

    settings: OutreachSettings
    runtimes: list[Runtime]
    producer: AIOKafkaProducer

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtimes[0].pool

    async def send(self, payload: BaseModel) -> None:
        """Produce one contract event to its topic, keyed as its owner keys it; returns once the broker has it."""
        spec = registry.spec_for(payload)
        await self.producer.send_and_wait(
            self.settings.topic(spec.topic),
            envelope(payload).model_dump_json().encode(),
            key=spec.key(payload).encode(),
        )

    async def send_in_order(self, order: int, first: Sequence[BaseModel], second: Sequence[BaseModel]) -> None:
        """Events of one transaction: `first` before `second`, the other way round, or all at once."""
        if order == 2:
            await asyncio.gather(*(self.send(p) for p in [*first, *second]))
            return
        for p in [*first, *second] if order == 0 else [*second, *first]:
            await self.send(p)

    async def applied(self, group: str, n: int) -> bool:
        """Whether a consumer group has taken in at least `n` events (each is in the inbox once), or for the
        directory copy, which keeps no inbox rows, everything sent to its topics (offsets committed to their end)."""
        if group == DIRECTORY_GROUP:
            topics = self.consumers(group)[0].topics
            return await caught_up(self.settings.kafka_bootstrap_servers, self.settings.topic_prefix + group, topics)
        return bool(await self.pool.fetchval("SELECT count(*) >= $2 FROM inbox WHERE consumer = $1", group, n))

    async def both_joined(self, group: str) -> bool:
        """Whether both replicas' consumers of a group have their partitions (so both take part)."""
        return await stable_members(self.settings.kafka_bootstrap_servers, self.settings.topic_prefix + group) == 2

    async def registrations(self) -> list[str]:
        """The child of every group registration outreach wrote, once its outbox is empty (a re-sent one once)."""
        events = (await written(self.settings, self.pool)).values()
        return [e["data"]["student_id"] for e in events if e["type"] == "outreach.group.registered.v1"]

    def consumers(self, group: str) -> list[InboxConsumer]:
        """The group's consumer in each replica."""
        return [next(c for c in rt.consumers if c.group == group) for rt in self.runtimes]


@pytest.fixture
async def replicas(make_settings) -> AsyncIterator[Replicas]:
    # Six partitions and two lanes per replica: most pairs land in different lanes or different replicas.
    settings = make_settings(
        OutreachSettings, scheduler_enabled=False, topic_partitions=6, consumer_parallelism=2, consumer_batch_size=500
    )
    runtimes = [await start_runtime(build_spec(settings, ManualClock())) for _ in range(2)]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        r = Replicas(settings, runtimes, producer)
        for group in (DIRECTORY_GROUP, FINDINGS_GROUP):
            await wait_for(partial(r.both_joined, group), timeout=60, interval=0.5)
        yield r
        for group in (DIRECTORY_GROUP, FINDINGS_GROUP):
            assert sum(c.dead_lettered for c in r.consumers(group)) == 0
    finally:
        await producer.stop()
        for rt in runtimes:
            await stop_runtime(rt)


def _student(i: int, r: int, sibling: int = 0) -> StudentRegistered:
    return StudentRegistered(
        student_id=f"stu-{r}-{i}-{sibling}",
        class_id="c2",
        org_path=class_path(),
        family_id=f"fam-{r}-{i}",
        occurred_at=now(),
    )


async def test_every_left_behind_child_is_registered_once_whatever_the_interleaving(replicas: Replicas) -> None:
    expected: set[str] = set()  # every child of a family whose parents work away
    sent = 0
    for r in range(ROUNDS):
        # Families registered without students first (the committees API): their student.registered then comes
        # with a family.changed. The other half arrive as an import: student.registered + family.registered.
        known = [i for i in range(FAMILIES) if i % 2 == 0]
        for i in known:
            await replicas.send(family(f"fam-{r}-{i}", [], away=i % 4 != 0))
        sent += len(known)
        await wait_for(partial(replicas.applied, DIRECTORY_GROUP, sent), timeout=60, interval=0.2)

        pairs: list[tuple[list[StudentRegistered], FamilyFacts, int]] = []
        for i in range(FAMILIES):
            fid, away = f"fam-{r}-{i}", i % 4 not in (0, 1)
            kids = [_student(i, r, k) for k in range(1 + i % 2)]  # import families have two children
            ids = [k.student_id for k in kids]
            fam: FamilyFacts = family(fid, ids, away=away)
            if i in known:
                fam = FamilyChanged(**fam.model_dump())
            if away:
                expected |= set(ids)
            sent += len(kids) + 1
            pairs.append((kids, fam, i % 3))
        await asyncio.gather(*(replicas.send_in_order(order, kids, [fam]) for kids, fam, order in pairs))
        await wait_for(partial(replicas.applied, DIRECTORY_GROUP, sent), timeout=90, interval=0.2)

    directory = replicas.consumers(DIRECTORY_GROUP)
    assert all(c.applied > 0 for c in directory), "both replicas must have applied directory events"
    members = await replicas.pool.fetch(
        "SELECT student_id FROM group_memberships WHERE grp = 'left_behind' AND ended_at IS NULL"
    )
    registered = Counter(await replicas.registrations())
    missing = expected - {m["student_id"] for m in members}
    assert not missing, f"{len(missing)} of {len(expected)} left-behind children never registered"
    assert {m["student_id"] for m in members} == expected  # no child of a family at home
    assert registered == dict.fromkeys(expected, 1)  # one event each


async def test_a_membership_from_a_finding_follows_a_move_whatever_the_interleaving(replicas: Replicas) -> None:
    """A finding recorded in the old class and the child's move, at once: the membership ends in the new class."""
    n = 400
    kids = [_student(i, 0) for i in range(n)]
    await asyncio.gather(*(replicas.send(k) for k in kids))
    await wait_for(partial(replicas.applied, DIRECTORY_GROUP, n), timeout=60, interval=0.2)

    moves = [StudentChanged(**{**k.model_dump(), "class_id": "c9", "org_path": class_path("c9")}) for k in kids]
    found = [finding(k.student_id, Category.DISABILITY, Severity.MEDIUM, cls="c2") for k in kids]
    await asyncio.gather(
        *(replicas.send_in_order(i % 3, [m], [f]) for i, (m, f) in enumerate(zip(moves, found, strict=True)))
    )
    await wait_for(partial(replicas.applied, DIRECTORY_GROUP, 2 * n), timeout=90, interval=0.2)
    await wait_for(partial(replicas.applied, FINDINGS_GROUP, n), timeout=90, interval=0.2)

    paths = await replicas.pool.fetch("SELECT student_id, org_path FROM group_memberships WHERE grp = 'disability'")
    stale = [r["student_id"] for r in paths if r["org_path"] != class_path("c9")]
    assert len(paths) == n
    assert not stale, f"{len(stale)} of {n} memberships left in the class the child moved out of"


async def test_a_finding_keeps_a_directory_flagged_child_in_the_group_in_either_order(replicas: Replicas) -> None:
    """Parents back home end a membership that only the directory flag held, never one a teacher found."""
    # The flag first, then the finding; then the parents come home.
    await replicas.send(family("fam-a", ["stu-a"], away=True))
    await replicas.send(_student(0, 0).model_copy(update={"student_id": "stu-a", "family_id": "fam-a"}))
    await wait_for(partial(replicas.applied, DIRECTORY_GROUP, 2), timeout=30, interval=0.2)
    await replicas.send(finding("stu-a", Category.LEFT_BEHIND, Severity.HIGH))
    await wait_for(partial(replicas.applied, FINDINGS_GROUP, 1), timeout=30, interval=0.2)
    await replicas.send(FamilyChanged(**family("fam-a", ["stu-a"], away=False).model_dump()))
    # The other order: the finding first, then the flag, then the parents come home.
    await replicas.send(finding("stu-b", Category.LEFT_BEHIND, Severity.HIGH))
    await wait_for(partial(replicas.applied, FINDINGS_GROUP, 2), timeout=30, interval=0.2)
    await replicas.send(family("fam-b", ["stu-b"], away=True))
    await replicas.send(_student(1, 0).model_copy(update={"student_id": "stu-b", "family_id": "fam-b"}))
    await wait_for(partial(replicas.applied, DIRECTORY_GROUP, 5), timeout=30, interval=0.2)
    await replicas.send(FamilyChanged(**family("fam-b", ["stu-b"], away=False).model_dump()))
    await wait_for(partial(replicas.applied, DIRECTORY_GROUP, 6), timeout=30, interval=0.2)

    rows = await replicas.pool.fetch(
        "SELECT student_id, source, ended_at IS NULL AS active FROM group_memberships ORDER BY student_id"
    )
    assert [tuple(r) for r in rows] == [("stu-a", "visit_finding", True), ("stu-b", "visit_finding", True)]
    # One registration each: taking over the flag's membership is not a new one.
    assert len(await replicas.registrations()) == 2
