"""Findings open exactly one case per child, with the right carer and deadline, under redelivery, concurrency
and replay (real Kafka and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer

from services.outreach.app import build_spec
from services.outreach.handlers import FINDINGS_GROUP
from services.outreach.settings import OutreachSettings
from services.outreach.usecases.findings import Reaction
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CASE
from shared.contracts.visits import FindingRecorded
from shared.events import Event, type_of
from shared.inbox import Batch, InboxConsumer
from shared.testing.fixtures import read_topic, wait_for
from shared.web import start_runtime, stop_runtime
from tests.integration.outreach.helpers import (
    by_type,
    class_path,
    envelope,
    finding,
    open_cases_per_child,
    publish,
    school,
    school_staff,
    written,
)

pytestmark = pytest.mark.integration
FINDING = type_of(FindingRecorded)


async def started(settings: OutreachSettings, clock: ManualClock | None = None):
    runtime = await start_runtime(build_spec(settings, clock))
    await publish(settings, school_staff())
    await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=20)
    return runtime


async def test_a_finding_opens_exactly_one_case_with_carer_and_deadline(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    runtime = await started(settings)
    try:
        f = finding("stu-1", Category.LEFT_BEHIND, Severity.HIGH)
        await publish(settings, [f])
        case = await wait_for(
            lambda: runtime.pool.fetchrow("SELECT * FROM cases WHERE student_id = 'stu-1'"), timeout=10
        )
        assert await runtime.pool.fetchval("SELECT count(*) FROM cases") == 1
        assert case["state"] == "assigned"
        assert case["risk_level"] == "high"
        assert case["categories"] == ["left_behind"]
        assert case["org_path"] == class_path()
        assert case["contact_due"] == f.recorded_at + timedelta(hours=72)
        carers = await runtime.pool.fetch("SELECT staff_id, role, org_path FROM case_carers")
        assert [tuple(r) for r in carers] == [("t-head-c2", "class_teacher", school())]
        member = await runtime.pool.fetchrow("SELECT * FROM group_memberships WHERE student_id = 'stu-1'")
        assert (member["grp"], member["source"], member["verified"]) == ("left_behind", "visit_finding", None)

        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(CASE), expect=2)
        events = by_type(messages)
        opened = events["outreach.case.opened.v1"][0]
        assert opened["key"] == "stu-1"
        assert opened["value"]["data"]["finding_id"] == f.finding_id
        assert opened["value"]["data"]["first_contact_due"].startswith(
            (f.recorded_at + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%S")
        )
        assigned = events["outreach.case.assigned.v1"][0]["value"]["data"]
        assert assigned["carers"] == [{"staff_id": "t-head-c2", "role": "class_teacher", "org_path": school()}]
    finally:
        await stop_runtime(runtime)


async def test_carers_by_rule_urgent_safety_risk_and_mental_health_join(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    runtime = await started(settings)
    try:
        await publish(
            settings,
            [
                finding("stu-s", Category.SAFETY_RISK, Severity.URGENT),
                finding("stu-s", Category.MENTAL_HEALTH, Severity.HIGH),
                finding("stu-s", Category.FAMILY_CONFLICT, Severity.MEDIUM),
                finding("stu-x", Category.MENTAL_HEALTH, Severity.HIGH, cls="c7"),  # class without a class teacher
            ],
        )
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 4 FROM case_findings"), timeout=10)
        rows = await runtime.pool.fetch(
            "SELECT c.student_id, cc.staff_id, cc.role FROM case_carers cc JOIN cases c USING (case_id)"
            " ORDER BY c.student_id, cc.role"
        )
        assert [tuple(r) for r in rows] == [
            ("stu-s", "t-head-c2", "class_teacher"),
            ("stu-s", "mh-1", "mental_health_teacher"),
            ("stu-s", "vp-1", "vice_principal"),
            ("stu-x", "mh-1", "mental_health_teacher"),
        ]
        case = await runtime.pool.fetchrow("SELECT * FROM cases WHERE student_id = 'stu-s'")
        # urgent + three categories: capped at urgent; the earliest deadline (urgent, 24 h) stands
        assert case["risk_level"] == "urgent"
        assert case["categories"] == ["safety_risk", "mental_health", "family_conflict"]
        refs = await runtime.pool.fetch("SELECT department, category FROM referrals ORDER BY department, category")
        assert [tuple(r) for r in refs] == [
            ("civil_affairs", "safety_risk"),
            ("public_security", "safety_risk"),
            ("womens_federation", "family_conflict"),
        ]
    finally:
        await stop_runtime(runtime)


async def test_redelivery_concurrency_and_full_replay_leave_one_open_case_per_child(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    runtime = await started(settings)
    pool = runtime.pool
    try:
        # The same event delivered twice, and two findings for one child back to back.
        first = envelope(finding("stu-a", Category.DISABILITY, Severity.MEDIUM))
        second = finding("stu-a", Category.FAMILY_HARDSHIP, Severity.HIGH)
        other = [finding(f"stu-{i}", Category.ORPHANED_OR_UNACCOMPANIED, Severity.LOW) for i in range(10)]
        await publish(settings, [first, first, second, *other, first])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 12 FROM case_findings"), timeout=15)

        # Two findings for one (new) child applied at the same moment in two transactions.
        reaction = Reaction(settings.rules, ManualClock())
        pair = [
            finding("stu-b", Category.LEFT_BEHIND, Severity.HIGH),
            finding("stu-b", Category.DISABILITY, Severity.URGENT),
        ]

        async def apply(p):
            async with pool.acquire() as conn, conn.transaction():
                await reaction.on_findings(conn, [Event(envelope(p), p, "visits.finding.events", 0, 0)])

        await asyncio.gather(*(apply(p) for p in pair))
        # The same finding twice at once (two consumer groups racing) applies once.
        third = finding("stu-b", Category.HEALTH_NEED, Severity.HIGH)
        results = await asyncio.gather(apply(third), apply(third), return_exceptions=True)
        assert sum(r is None for r in results) >= 1

        counts = await open_cases_per_child(pool)
        assert counts == {"stu-a": 1, "stu-b": 1, **{f"stu-{i}": 1 for i in range(10)}}
        assert await pool.fetchval("SELECT count(*) FROM case_findings WHERE student_id = 'stu-a'") == 2
        assert await pool.fetchval("SELECT count(*) FROM case_findings WHERE student_id = 'stu-b'") == 3
        b = await pool.fetchrow("SELECT * FROM cases WHERE student_id = 'stu-b'")
        assert sorted(b["categories"]) == ["disability", "health_need", "left_behind"]
        assert b["risk_level"] == "urgent"
        before = await written(settings, pool)
        cases_before = await pool.fetch(
            "SELECT case_id, student_id, state, risk_level, categories FROM cases ORDER BY 1"
        )

        async def one_by_one(conn, event):  # a record-by-record handler: the batch handler with a batch of one
            await reaction.on_findings(conn, [event])

        # A full replay of the topic under fresh consumer groups changes nothing: set-based, as outreach runs it,
        # and record by record, as the kit redoes a failed batch.
        replays = [
            InboxConsumer(
                settings, pool, FINDINGS_GROUP + ".replay", Batch(frozenset({FINDING}), reaction.on_findings)
            ),
            InboxConsumer(settings, pool, FINDINGS_GROUP + ".replay2", {FINDING: one_by_one}),
        ]
        for replay in replays:
            task = asyncio.create_task(replay.run())
            try:
                await wait_for(
                    lambda: pool.fetchval("SELECT count(*) = 12 FROM inbox WHERE consumer = $1", replay.group),  # noqa: B023
                    timeout=20,
                )
            finally:
                task.cancel()
        assert await open_cases_per_child(pool) == counts
        assert await pool.fetchval("SELECT count(*) FROM case_findings") == 15
        assert await written(settings, pool) == before  # no new event
        assert await pool.fetch("SELECT case_id, student_id, state, risk_level, categories FROM cases ORDER BY 1") == (
            cases_before
        )
    finally:
        await stop_runtime(runtime)


async def test_a_poison_record_is_dead_lettered_and_its_batch_still_applies(make_settings):
    settings = make_settings(OutreachSettings, scheduler_enabled=False, topic_partitions=1)
    runtime = await started(settings)
    try:
        good = [finding(f"stu-g{i}", Category.LEFT_BEHIND, Severity.LOW) for i in range(5)]
        broken = envelope(finding("stu-bad", Category.LEFT_BEHIND, Severity.LOW)).model_copy(
            update={"data": {"finding_id": "f-bad", "severity": "catastrophic"}}
        )
        await publish(settings, good[:2])
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                settings.topic("visits.finding.events"), broken.model_dump_json().encode(), key=b"stu-bad"
            )
        finally:
            await producer.stop()
        await publish(settings, good[2:])
        await wait_for(lambda: runtime.pool.fetchval("SELECT count(*) = 5 FROM case_findings"), timeout=15)
        topic = settings.topic("visits.finding.events")
        dlt = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.{FINDINGS_GROUP}.dlt", expect=1)
        assert len(dlt) == 1
        assert dlt[0]["headers"]["dlt.error"].startswith("poison: payload does not match visits.finding.recorded.v1")
        assert await open_cases_per_child(runtime.pool) == {f"stu-g{i}": 1 for i in range(5)}
    finally:
        await stop_runtime(runtime)
