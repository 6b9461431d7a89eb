"""Deadlines with an injected clock: overdue cases and unacknowledged referrals escalate school → district → city."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.outreach.app import build_spec
from services.outreach.settings import OutreachSettings
from services.outreach.usecases.deadlines import tick
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import CASE, REFERRAL_TOPICS
from shared.db import lock_key
from shared.testing.fixtures import read_topic, wait_for
from shared.web import start_runtime, stop_runtime
from tests.integration.outreach.helpers import CITY, DISTRICT, by_type, finding, publish, school_staff

pytestmark = pytest.mark.integration


async def test_overdue_case_escalates_when_the_clock_passes_the_deadline(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_interval_seconds=0.1)
    runtime = await start_runtime(build_spec(settings, clock))
    pool = runtime.pool
    try:
        await publish(settings, school_staff())
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
        urgent = finding("stu-u", Category.SAFETY_RISK, Severity.URGENT, recorded_at=clock.now())
        calm = finding("stu-c", Category.LEFT_BEHIND, Severity.LOW, recorded_at=clock.now())
        await publish(settings, [urgent, calm])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM cases"), timeout=15)

        clock.advance(timedelta(hours=23, minutes=59))
        await tick(pool, settings, clock)  # nothing due yet
        assert await pool.fetchval("SELECT count(*) FROM cases WHERE overdue") == 0

        clock.advance(timedelta(minutes=2))  # 24 h passed: the urgent case is overdue
        case = await wait_for(
            lambda: pool.fetchrow("SELECT * FROM cases WHERE student_id = 'stu-u' AND escalation_level = 1"),
            timeout=10,
        )
        assert case["overdue"] and case["escalated_to"] == DISTRICT
        assert not await pool.fetchval("SELECT overdue FROM cases WHERE student_id = 'stu-c'")

        clock.advance(timedelta(hours=24, minutes=1))  # still nobody called: one more level up
        case = await wait_for(
            lambda: pool.fetchrow("SELECT * FROM cases WHERE student_id = 'stu-u' AND escalation_level = 2"),
            timeout=10,
        )
        assert case["escalated_to"] == CITY
        clock.advance(timedelta(days=30))  # the low case's 30 days are over; the city is the urgent case's top
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 1 FROM cases WHERE student_id = 'stu-c' AND overdue"))
        assert await pool.fetchval("SELECT escalation_level FROM cases WHERE student_id = 'stu-u'") == 2
        # The urgent case's referrals were not acknowledged within 3 days: district, then 3 days later the city.
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM referrals WHERE escalation_level = 1"))
        clock.advance(timedelta(days=3, minutes=1))
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 2 FROM referrals WHERE escalation_level = 2"))

        steps = await pool.fetch("SELECT level, escalated_to FROM case_escalations ORDER BY escalated_at, level")
        assert [tuple(r) for r in steps] == [(1, DISTRICT), (2, CITY), (1, DISTRICT)]
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(CASE), expect=7)
        escalated = [m["value"]["data"] for m in by_type(messages)["outreach.case.escalated.v1"]]
        assert [(e["student_id"], e["escalated_to"]) for e in escalated] == [
            ("stu-u", DISTRICT),
            ("stu-u", CITY),
            ("stu-c", DISTRICT),
        ]
        refs = await read_topic(
            settings.kafka_bootstrap_servers, [settings.topic(t) for t in REFERRAL_TOPICS], expect=6
        )
        ref_escalated = by_type(refs)["outreach.referral.escalated.v1"]
        assert sorted(
            (m["value"]["data"]["department"], m["value"]["data"]["escalated_to"]) for m in ref_escalated
        ) == [
            ("civil_affairs", CITY),
            ("civil_affairs", DISTRICT),
            ("public_security", CITY),
            ("public_security", DISTRICT),
        ]
    finally:
        await stop_runtime(runtime)


async def test_a_contact_in_time_stops_escalation_and_only_one_scheduler_acts(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    runtime = await start_runtime(build_spec(settings, clock))
    pool = runtime.pool
    try:
        await publish(settings, school_staff())
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
        await publish(settings, [finding(f"stu-{i}", Category.DISABILITY, Severity.HIGH) for i in range(3)])
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 3 FROM cases"), timeout=15)
        await pool.execute(
            "UPDATE cases SET contact_due = NULL, escalation_due = NULL, state = 'in_progress'"
            " WHERE student_id = 'stu-0'"
        )
        clock.advance(timedelta(hours=73))
        # Another instance holds the scheduler lock: this one does nothing.
        async with pool.acquire() as other, other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock($1)", lock_key(f"scheduler:{settings.db_schema}"))
            assert await tick(pool, settings, clock) is None
        assert await tick(pool, settings, clock) == (2, 3, 0, 0)  # two cases; three unacknowledged referrals
        assert await tick(pool, settings, clock) == (0, 0, 0, 0)  # restart-safe: progress lives in the rows
        rows = await pool.fetch("SELECT student_id, escalation_level FROM cases ORDER BY student_id")
        assert [tuple(r) for r in rows] == [("stu-0", 0), ("stu-1", 1), ("stu-2", 1)]
    finally:
        await stop_runtime(runtime)


async def test_a_case_opened_before_the_directory_knew_a_carer_is_assigned_later(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    runtime = await start_runtime(build_spec(settings, clock))
    pool = runtime.pool
    try:
        await publish(settings, [finding("stu-early", Category.ORPHANED_OR_UNACCOMPANIED, Severity.HIGH)])
        case = await wait_for(lambda: pool.fetchrow("SELECT * FROM cases WHERE student_id = 'stu-early'"), timeout=15)
        assert case["state"] == "open"
        assert await pool.fetchval("SELECT count(*) FROM case_carers") == 0
        assert await tick(pool, settings, clock) == (0, 0, 0, 0)  # still nobody to assign

        await publish(settings, school_staff())
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
        assert await tick(pool, settings, clock) == (0, 0, 1, 0)
        rows = await pool.fetch("SELECT staff_id, role FROM case_carers")
        assert [tuple(r) for r in rows] == [("t-head-c2", "class_teacher")]
        assert await pool.fetchval("SELECT state FROM cases WHERE student_id = 'stu-early'") == "assigned"
        assert await tick(pool, settings, clock) == (0, 0, 0, 0)
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(CASE), expect=2)
        assigned = by_type(messages)["outreach.case.assigned.v1"]
        assert [m["value"]["data"]["carers"][0]["staff_id"] for m in assigned] == ["t-head-c2"]
    finally:
        await stop_runtime(runtime)
