"""The kit's directory copy (shared.directory): newest version wins whatever the order, redelivery changes nothing,
leavers stay gone. Each test runs once against the kit alone and once through each service that keeps the copy
(visits, outreach), through the real topics and consumer groups."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from services.outreach.app import build_spec as outreach_spec
from services.outreach.handlers import DIRECTORY_GROUP as OUTREACH_GROUP
from services.outreach.settings import OutreachSettings
from services.visits.app import build_spec as visits_spec
from services.visits.handlers import GROUP as VISITS_GROUP
from services.visits.settings import VisitsSettings
from shared import directory
from shared.clock import ManualClock
from shared.contracts import committees as c
from shared.contracts.common import LivingArrangement, OrgLevel, StaffRole
from shared.events import Envelope, Event, new_envelope, registry, type_of
from shared.inbox import Batch
from shared.kafka import TopicSpec, ensure_topics
from shared.relay import STRUCTURED_CONTENT_TYPE, TYPE_HEADER
from shared.settings import ServiceSettings
from shared.testing.fixtures import caught_up, read_topic, wait_for
from shared.web import Runtime, ServiceSpec, start_runtime, stop_runtime
from tests.integration.kitapp import KitSettings
from tests.integration.kitapp import spec as kit_spec

pytestmark = pytest.mark.integration

T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
CLASS1, CLASS2 = "/620400/620402/s1/g1/c1", "/620400/620402/s1/g1/c2"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def produce(settings: ServiceSettings, items: Sequence[BaseModel | Envelope]) -> list[Envelope]:
    """Produce contract events (or given envelopes) in order, as the relay sends them (keyed by their subject,
    with its headers)."""
    envs = [
        i
        if isinstance(i, Envelope)
        else new_envelope(registry.spec_for(i), i, correlation_id=str(uuid.uuid4()), causation_id=None)
        for i in items
    ]
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for e in envs:
            topic = settings.topic(registry.spec(e.type).topic)
            headers = [("content-type", STRUCTURED_CONTENT_TYPE), (TYPE_HEADER, e.type.encode())]
            await producer.send(topic, e.model_dump_json().encode(), key=e.subject.encode(), headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
    return envs


@dataclass
class Copy:
    """A running consumer of the directory copy and how to feed it."""

    settings: ServiceSettings
    runtime: Runtime
    group: str
    dead_letters: int = 0  # how many of the events sent the test expects to be dead-lettered

    @property
    def pool(self) -> asyncpg.Pool:
        return self.runtime.pool

    async def send(self, items: Sequence[BaseModel | Envelope]) -> list[Envelope]:
        """Produce contract events (or given envelopes, to redeliver them) in order, as the relay sends them (keyed
        by their subject, with its headers); wait until all are taken in."""
        envs = await produce(self.settings, items)
        # Taken in: the group committed its offsets past them (it keeps no inbox rows to count).
        consumer = next(c for c in self.runtime.consumers if c.group == self.group)
        full = self.settings.topic_prefix + self.group
        await wait_for(
            partial(caught_up, self.settings.kafka_bootstrap_servers, full, consumer.topics), timeout=60, interval=0.2
        )
        return envs

    async def version(self, table: str, **key: str) -> tuple[str, Any]:
        """The row's tuple version (`xmin`) and source version: a write of any kind changes the first."""
        where = " AND ".join(f"{k} = ${i}" for i, k in enumerate(key, 1))
        r = await self.pool.fetchrow(f"SELECT xmin::text, occurred_at FROM {table} WHERE {where}", *key.values())
        assert r is not None
        return r[0], r[1]

    async def row(self, table: str, **key: str) -> dict[str, Any] | None:
        where = " AND ".join(f"{k} = ${i}" for i, k in enumerate(key, 1))
        r = await self.pool.fetchrow(f"SELECT * FROM {table} WHERE {where}", *key.values())
        return None if r is None else dict(r)


def _kit(make_settings: Any) -> tuple[ServiceSpec, str]:
    settings = make_settings(KitSettings, topic_partitions=2)
    base = kit_spec(settings, consume=False)
    base.kit_migrations = [directory.MIGRATIONS]
    base.consumers = {"kittest.directory": directory.DirectoryCopy().subscription()}
    return base, "kittest.directory"


def _visits(make_settings: Any) -> tuple[ServiceSpec, str]:
    return visits_spec(make_settings(VisitsSettings, topic_partitions=2)), VISITS_GROUP


def _outreach(make_settings: Any) -> tuple[ServiceSpec, str]:
    settings = make_settings(OutreachSettings, topic_partitions=2, scheduler_enabled=False)
    return outreach_spec(settings, ManualClock()), OUTREACH_GROUP


@pytest.fixture(params=[_kit, _visits, _outreach], ids=["kit", "visits", "outreach"])
async def copy(request: pytest.FixtureRequest, make_settings: Any) -> AsyncIterator[Copy]:
    spec, group = request.param(make_settings)
    s = spec.settings
    await ensure_topics(
        s.kafka_bootstrap_servers, [TopicSpec(s.topic(t), s.topic_partitions) for t in directory.TOPICS]
    )
    runtime = await start_runtime(spec)
    try:
        consumer = next(c for c in runtime.consumers if c.group == group)
        await asyncio.wait_for(consumer.ready.wait(), 60)
        copy = Copy(s, runtime, group)
        yield copy
        assert consumer.dead_lettered == copy.dead_letters
    finally:
        await stop_runtime(runtime)


def student(sid: str, cls: str, path: str, when: datetime, *, changed: bool = False) -> c.StudentFacts:
    model = c.StudentChanged if changed else c.StudentRegistered
    return model(student_id=sid, class_id=cls, org_path=path, family_id=f"f-{sid}", occurred_at=when)


def staff(sid: str, head: str | None, when: datetime, *, changed: bool = False) -> c.StaffFacts:
    model = c.StaffChanged if changed else c.StaffRegistered
    roles = [StaffRole.CLASS_TEACHER] if head else [StaffRole.SUBJECT_TEACHER]
    return model(staff_id=sid, org_path="/620400/620402/s1", roles=roles, class_ids=["c1"], head_class_id=head,
                 occurred_at=when)  # fmt: skip


def family(fid: str, kids: list[str], away: bool, when: datetime, *, changed: bool = False) -> c.FamilyFacts:
    model = c.FamilyChanged if changed else c.FamilyRegistered
    return model(family_id=fid, student_ids=kids, guardian_ids=[f"g-{fid}"], parents_work_away=away,
                 living_arrangement=LivingArrangement.BOTH_PARENTS, occurred_at=when)  # fmt: skip


def member(mid: str, role: c.TeamRole, when: datetime) -> c.InstructorTeamMemberAdded:
    return c.InstructorTeamMemberAdded(team_id="team1", member_id=mid, staff_id=f"t-{mid}", org_path="/620400/620402",
                                       role=role, is_lead=False, occurred_at=when)  # fmt: skip


async def test_the_newest_version_wins_whatever_the_order(copy: Copy) -> None:
    unit = c.OrgUnitRegistered(org_unit_id="c2", parent_id="g1", level=OrgLevel.CLASS, org_path=CLASS2, name="二班",
                               occurred_at=at(0))  # fmt: skip
    await copy.send(
        [
            # In order: registered, then changed.
            student("st-a", "c1", CLASS1, at(0)),
            student("st-a", "c2", CLASS2, at(5), changed=True),
            # Out of order: the change is delivered before the registration it follows.
            student("st-b", "c2", CLASS2, at(5), changed=True),
            student("st-b", "c1", CLASS1, at(0)),
            staff("t-1", None, at(5), changed=True),
            staff("t-1", "c1", at(0)),
            family("f-1", ["st-a"], True, at(5), changed=True),
            family("f-1", ["st-a", "st-b"], False, at(0)),
            c.OrgUnitChanged(**{**unit.model_dump(), "name": "二(2)班", "occurred_at": at(5)}),
            unit,
            member("m1", c.TeamRole.EXPERT_SCHOLAR, at(5)),
            member("m1", c.TeamRole.MENTAL_HEALTH_TEACHER, at(0)),
        ]
    )
    for sid in ("st-a", "st-b"):
        row = await copy.row("students", student_id=sid)
        assert row is not None and (row["class_id"], row["org_path"], row["active"]) == ("c2", CLASS2, True)
    t = await copy.row("staff", staff_id="t-1")
    assert t is not None and (t["head_class_id"], t["roles"]) == (None, ["subject_teacher"])
    f = await copy.row("families", family_id="f-1")
    assert f is not None and (f["student_ids"], f["parents_work_away"]) == (["st-a"], True)
    o = await copy.row("org_units", org_unit_id="c2")
    assert o is not None and o["name"] == "二(2)班"
    m = await copy.row("team_members", team_id="team1", member_id="m1")
    assert m is not None and m["role"] == "expert_scholar"

    # A late older event, in a later poll: changes nothing.
    await copy.send([student("st-a", "c1", CLASS1, at(1), changed=True), staff("t-1", "c1", at(1), changed=True)])
    row = await copy.row("students", student_id="st-a")
    assert row is not None and row["class_id"] == "c2"
    t = await copy.row("staff", staff_id="t-1")
    assert t is not None and t["head_class_id"] is None


async def test_redelivery_and_replay_change_nothing(copy: Copy) -> None:
    first = await copy.send([student("st-r", "c1", CLASS1, at(0)), family("f-r", ["st-r"], False, at(0))])
    last = await copy.send([student("st-r", "c2", CLASS2, at(5), changed=True)])
    before = await copy.row("students", student_id="st-r")
    versions = [await copy.version("students", student_id="st-r"), await copy.version("families", family_id="f-r")]
    # The same envelopes again (a redelivery), then the same facts as new envelopes (a replay of the source topic,
    # or a producer retry after a lost acknowledgement), each in a poll of its own and all in one.
    await copy.send(first)
    await copy.send(last)
    await copy.send([student("st-r", "c1", CLASS1, at(0)), student("st-r", "c2", CLASS2, at(5), changed=True)])
    await copy.send([*first, *last])
    assert await copy.row("students", student_id="st-r") == before
    assert before is not None and before["org_path"] == CLASS2
    # Not even written again (the same tuples): nothing for a service's change hook to react to twice.
    after = [await copy.version("students", student_id="st-r"), await copy.version("families", family_id="f-r")]
    assert after == versions
    # Which is why the copy keeps no inbox rows.
    assert await copy.pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", copy.group) == 0


async def test_leavers_stay_gone_and_late_registrations_do_not_bring_them_back(copy: Copy) -> None:
    await copy.send(
        [
            student("st-l", "c1", CLASS1, at(0)),
            staff("t-l", "c1", at(0)),
            member("m-l", c.TeamRole.MENTAL_HEALTH_TEACHER, at(0)),
        ]
    )
    await copy.send(
        [
            c.StudentLeft(student_id="st-l", org_path=CLASS1, occurred_at=at(5)),
            c.StaffLeft(staff_id="t-l", org_path="/620400/620402/s1", occurred_at=at(5)),
            c.InstructorTeamMemberRemoved(
                team_id="team1", member_id="m-l", org_path="/620400/620402", occurred_at=at(5)
            ),
            # Gone before its registration arrives: remembered as gone.
            c.StudentLeft(student_id="st-early", org_path=CLASS2, occurred_at=at(5)),
        ]
    )
    # Late older registrations and changes, one poll later.
    await copy.send(
        [
            student("st-l", "c2", CLASS2, at(3), changed=True),
            staff("t-l", "c2", at(3), changed=True),
            member("m-l", c.TeamRole.MENTAL_HEALTH_TEACHER, at(3)),
            student("st-early", "c2", CLASS2, at(0)),
        ]
    )
    s = await copy.row("students", student_id="st-l")
    assert s is not None and (s["active"], s["class_id"]) == (False, "c1")  # gone, with its last facts kept
    t = await copy.row("staff", staff_id="t-l")
    assert t is not None and (t["active"], t["head_class_id"]) == (False, "c1")
    m = await copy.row("team_members", team_id="team1", member_id="m-l")
    assert m is not None and m["active"] is False
    early = await copy.row("students", student_id="st-early")
    assert early is not None and early["active"] is False

    # A newer registration (the child comes back) does bring them back.
    await copy.send([student("st-l", "c2", CLASS2, at(9), changed=True)])
    s = await copy.row("students", student_id="st-l")
    assert s is not None and (s["active"], s["class_id"]) == (True, "c2")


async def test_an_event_not_matching_its_contract_is_dead_lettered_naming_the_field_and_its_poll_applied(
    copy: Copy,
) -> None:
    changed = staff("t-bad", None, at(0), changed=True)
    bad = new_envelope(registry.spec_for(changed), changed, correlation_id="corr", causation_id=None)
    bad.data["roles"] = ["janitor"]  # not a staff role of the contract
    copy.dead_letters = 1
    await copy.send([student("st-p0", "c1", CLASS1, at(0)), bad, student("st-p1", "c1", CLASS1, at(0))])
    for sid in ("st-p0", "st-p1"):
        assert await copy.row("students", student_id=sid) is not None
    assert await copy.row("staff", staff_id="t-bad") is None
    dlt = await read_topic(copy.settings.kafka_bootstrap_servers, f"{copy.settings.topic(c.STAFF)}.{copy.group}.dlt")
    assert [m["value"]["id"] for m in dlt] == [str(bad.id)]
    error = dlt[0]["headers"]["dlt.error"]
    assert error.startswith("poison: payload does not match committees.staff.changed.v1") and "roles.0" in error


class Refuses:
    """A change hook that fails whenever the rows written include one student (a handler failing for one event)."""

    def __init__(self, student_id: str) -> None:
        self.student_id = student_id

    async def __call__(self, conn: asyncpg.Connection, changes: directory.Changes) -> None:
        if any(r["student_id"] == self.student_id for r in changes.of(directory.STUDENTS)):
            raise RuntimeError("the hook refuses this student")


async def test_a_poll_that_fails_is_redone_record_by_record_each_read_alone(make_settings: Any) -> None:
    """A copy reads its next poll ahead of the transaction; when a poll fails, each record is redone in a
    transaction of its own with only its own event: the one the hook refuses is dead-lettered, the rest of its
    poll applied (with the whole poll's read used for each, every record of the poll would fail)."""
    settings = make_settings(KitSettings, topic_partitions=1, consumer_max_attempts=1)
    spec = kit_spec(settings, consume=False)
    spec.kit_migrations = [directory.MIGRATIONS]
    spec.consumers = {
        "kittest.directory": directory.DirectoryCopy(Refuses("st-09"), reads=[directory.STUDENTS]).subscription()
    }
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [TopicSpec(settings.topic(t), settings.topic_partitions) for t in directory.TOPICS],
    )
    # All in the partition before the group starts, so that its first poll holds them all.
    await produce(settings, [student(f"st-{i:02}", "c1", CLASS1, at(i)) for i in range(20)])
    runtime = await start_runtime(spec)
    try:
        consumer = runtime.consumers[0]
        copy = Copy(settings, runtime, consumer.group)
        await wait_for(lambda: consumer.dead_lettered == 1 and consumer.applied == 19, timeout=60)
        for i in range(20):
            assert (await copy.row("students", student_id=f"st-{i:02}") is None) == (i == 9)
        dlt = await read_topic(settings.kafka_bootstrap_servers, f"{settings.topic(c.STUDENT)}.{consumer.group}.dlt")
        assert [m["value"]["data"]["student_id"] for m in dlt] == ["st-09"]
    finally:
        await stop_runtime(runtime)


class Follows:
    """A `then` part following merges beyond the copy: notes each merge it gets and what the copy held for the
    duplicate at that moment (its transaction's view)."""

    def __init__(self) -> None:
        self.seen: list[tuple[uuid.UUID, bool | None]] = []

    async def __call__(self, conn: asyncpg.Connection, events: list[Event[c.StudentMerged]]) -> None:
        for e in events:
            active = await conn.fetchval("SELECT active FROM students WHERE student_id = $1", e.payload.student_id)
            self.seen.append((e.envelope.id, active))


async def test_a_merge_is_followed_once_by_the_copys_own_group_after_the_copy(make_settings: Any) -> None:
    """`then` (the services' merges, folded into their directory group so that it reads the student topic once):
    each merge reaches it once, however often it is redelivered, in the poll's transaction after the copy
    applied it; the copy keeps inbox rows for those events only."""
    settings = make_settings(KitSettings, topic_partitions=2)
    spec = kit_spec(settings, consume=False)
    spec.kit_migrations = [directory.MIGRATIONS]
    follows = Follows()
    merged = frozenset({type_of(c.StudentMerged)})
    spec.consumers = {"kittest.directory": directory.DirectoryCopy(then=Batch(merged, follows)).subscription()}
    await ensure_topics(
        settings.kafka_bootstrap_servers,
        [TopicSpec(settings.topic(t), settings.topic_partitions) for t in directory.TOPICS],
    )
    runtime = await start_runtime(spec)
    try:
        consumer = runtime.consumers[0]
        await asyncio.wait_for(consumer.ready.wait(), 60)
        copy = Copy(settings, runtime, consumer.group)
        merge = c.StudentMerged(student_id="st-dup", merged_into="st-keep", org_path=CLASS1, occurred_at=at(5))
        sent = await copy.send([student("st-dup", "c1", CLASS1, at(0)), student("st-keep", "c1", CLASS1, at(0)), merge])
        # Redelivered alone, and with other events in one poll.
        await copy.send(sent[2:])
        await copy.send([student("st-other", "c1", CLASS1, at(0)), sent[2], sent[2]])
        assert follows.seen == [(sent[2].id, False)]  # once, with the duplicate already gone in the copy
        dup = await copy.row("students", student_id="st-dup")
        assert dup is not None and dup["active"] is False
        assert await copy.row("students", student_id="st-other") is not None
        assert [r[0] for r in await copy.pool.fetch("SELECT event_id FROM inbox WHERE consumer = $1", copy.group)] == [
            sent[2].id
        ]
    finally:
        await stop_runtime(runtime)
