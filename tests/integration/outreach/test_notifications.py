"""Notifications on the real stack: a carer's mail reaches a real local SMTP server (aiosmtpd in its own process)
once for an assigned case, also after the finding is redelivered or applied twice at once; due-soon and escalation
follow the injected clock, once when the scheduler's passes run twice at once (two replicas); a department's
answer reaches the case's carers; a mail sent while the SMTP server is down is retried and arrives later. Every
notice and its queued mail are committed with the fact that causes them (`usecases.notifications.publish`):
outreach reads none of its own events back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.outreach.app import create
from services.outreach.handlers import FINDINGS_GROUP
from services.outreach.settings import OutreachSettings
from services.outreach.usecases.deadlines import tick
from services.outreach.usecases.findings import Reaction
from services.outreach.usecases.notifications import tick as notify_tick
from shared import db
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import NOTIFICATION, NotificationCreated
from shared.contracts.visits import FINDING, FindingRecorded
from shared.devstack.smtp import SmtpServer
from shared.events import Event
from shared.testing.fixtures import caught_up, free_port, read_topic, serve, wait_for
from tests.integration.outreach.helpers import (
    CITY,
    DISTRICT,
    envelope,
    finding,
    publish,
    school,
    school_staff,
    staff,
    student,
    written,
)

pytestmark = pytest.mark.integration

CARER = "t-head-c2"  # the class teacher of c2 (helpers.school_staff)
MAIL = "head.c2@school.example"


def bearer(**claims: Any) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(**claims)}


TEACHER = bearer(role="teacher", org_path=school(), staff_id=CARER)


@pytest.fixture
def smtp(tmp_path: Path) -> SmtpServer:
    return SmtpServer(tmp_path / "smtp", free_port())


@pytest.fixture
async def running_smtp(smtp: SmtpServer) -> AsyncIterator[SmtpServer]:
    await asyncio.to_thread(smtp.start)
    try:
        yield smtp
    finally:
        await asyncio.to_thread(smtp.stop)


def _settings(make_settings: Any, smtp: SmtpServer) -> OutreachSettings:
    settings: OutreachSettings = make_settings(
        OutreachSettings,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        scheduler_interval_seconds=0.2,
        notify_interval_seconds=0.2,
        email_link_base="https://hss.example",
    )
    return settings


def mails_to(smtp: SmtpServer, address: str) -> list[Message]:
    return [m for m in smtp.messages() if m["To"] == address]


async def _carer_ready(http: httpx.AsyncClient, settings: OutreachSettings) -> None:
    await publish(settings, [*school_staff(), student("stu-n")])
    r = await http.put("/api/v1/notifications/email", headers=TEACHER, json={"email": MAIL})
    assert r.status_code == 200 and r.json()["email"] == MAIL


async def _mails(smtp: SmtpServer, n: int) -> list[Message]:
    await wait_for(lambda: len(mails_to(smtp, MAIL)) >= n, timeout=30)
    return mails_to(smtp, MAIL)


async def test_assigned_case_mails_its_carer_once_even_when_the_finding_comes_again(make_settings, running_smtp):
    smtp = running_smtp
    clock = ManualClock()
    settings = _settings(make_settings, smtp)
    async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
        await _carer_ready(http, settings)
        await asyncio.sleep(1)  # the directory copy has the class teacher before the finding comes
        fact = finding("stu-n", Category.LEFT_BEHIND, Severity.MEDIUM, recorded_at=clock.now())
        [sent] = await publish(settings, [fact])
        [assigned] = await _mails(smtp, 1)
        inbox = (await http.get("/api/v1/notifications", headers=TEACHER)).json()["items"]
        assert [n["kind"] for n in inbox] == ["case_assigned"]
        case_id = inbox[0]["case_id"]
        assert assigned["Subject"] == "[HSS] A care case was assigned to you"
        assert assigned["Message-ID"] == f"<{inbox[0]['notification_id']}@notifications.hss>"
        payload = assigned.get_payload(decode=True)
        assert isinstance(payload, bytes)
        body = payload.decode()
        assert f"https://hss.example/api/v1/cases/{case_id}" in body
        assert "stu-n" not in assigned.as_string()  # nothing about the child but the link

        # The finding delivered again: the same record (a producer retry, a replayed partition) and the same finding
        # under a new envelope (visits publishing it twice). The findings group takes both in; no second mail.
        await publish(settings, [sent, envelope(fact)])
        group, topics = settings.topic_prefix + FINDINGS_GROUP, [settings.topic(FINDING)]
        await wait_for(lambda: caught_up(settings.kafka_bootstrap_servers, group, topics), timeout=30)

        clock.advance(timedelta(days=6, hours=13))  # the 7-day first contact is due in 11 h: due soon
        await _mails(smtp, 2)
        clock.advance(timedelta(hours=12))  # nobody called: the case escalates to the district
        mails = await _mails(smtp, 3)
        await asyncio.sleep(1)  # a second mail of the redelivered finding would have been sent with these
        subjects = [m["Subject"] for m in mails_to(smtp, MAIL)]
        assert subjects == [
            "[HSS] A care case was assigned to you",
            "[HSS] A care case's contact is due soon",
            "[HSS] A care case was escalated",
        ], subjects
        assert len({m["Message-ID"] for m in mails}) == 3

        # The inbox: newest first, unread filter, mark read (own notifications only).
        inbox = (await http.get("/api/v1/notifications", headers=TEACHER)).json()["items"]
        assert [n["kind"] for n in inbox] == ["case_escalated", "case_due_soon", "case_assigned"]
        first = inbox[-1]["notification_id"]
        other = bearer(role="teacher", org_path=school(), staff_id="t-head-c9")
        assert (await http.post(f"/api/v1/notifications/{first}/read", headers=other)).status_code == 404
        r = await http.post(f"/api/v1/notifications/{first}/read", headers=TEACHER)
        assert r.status_code == 200 and r.json()["read_at"] is not None
        unread = (await http.get("/api/v1/notifications?unread=true&limit=1", headers=TEACHER)).json()
        assert [n["kind"] for n in unread["items"]] == ["case_escalated"] and unread["next_cursor"]
        rest = await http.get(f"/api/v1/notifications?unread=true&cursor={unread['next_cursor']}", headers=TEACHER)
        assert [n["kind"] for n in rest.json()["items"]] == ["case_due_soon"]
        no_staff = bearer(role="school_admin", org_path=school())
        assert (await http.get("/api/v1/notifications", headers=no_staff)).status_code == 403

        # The notification topic, which any other channel may subscribe to, names no child.
        events = await read_topic(settings.kafka_bootstrap_servers, settings.topic(NOTIFICATION), expect=3)
        assert len(events) == 3
        for m in events:
            data = m["value"]["data"]
            NotificationCreated.model_validate(data)
            assert "stu-" not in repr(m) and data["recipient_id"] == CARER == m["key"]


async def test_a_finding_applied_again_by_a_fresh_reaction_also_twice_at_once_adds_no_notification_and_no_mail(
    make_settings, smtp
):
    """Beyond the kit's inbox (which drops a redelivered record per consumer group): the same finding applied by a
    fresh reaction (a replay under a fresh group), twice at once (two replicas in a rebalance) and once more, creates
    one notification, queues one mail and publishes one notification event; both exist as soon as the transaction
    that assigned the case has committed."""
    clock = ManualClock()
    settings = _settings(make_settings, smtp)
    settings = settings.model_copy(update={"scheduler_enabled": False})
    async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
        await _carer_ready(http, settings)
        pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=4)
        try:
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 4 FROM staff"), timeout=15)
            fact = finding("stu-n", Category.LEFT_BEHIND, Severity.MEDIUM, recorded_at=clock.now())
            reaction = Reaction(settings.rules, clock)

            async def apply() -> None:
                async with pool.acquire() as conn, conn.transaction():
                    await reaction.on_findings(conn, [Event[FindingRecorded](envelope(fact), fact, FINDING, 0, 0)])

            await asyncio.gather(apply(), apply(), return_exceptions=True)
            # Committed: the case, its carer, the notice and its mail, all at once.
            assert await pool.fetchval("SELECT count(*) FROM notifications") == 1
            assert await pool.fetchval("SELECT recipient_id FROM email_deliveries WHERE state = 'pending'") == CARER
            await apply()
            assert await pool.fetchval("SELECT count(*) FROM cases") == 1
            assert await pool.fetchval("SELECT count(*) FROM notifications") == 1
            assert await pool.fetchval("SELECT count(*) FROM email_deliveries") == 1
            notices = [
                e for e in (await written(settings, pool)).values() if e["type"].startswith("outreach.notification.")
            ]
            assert [(n["data"]["recipient_id"], n["data"]["kind"]) for n in notices] == [(CARER, "case_assigned")]
        finally:
            await pool.close()


async def test_mail_is_retried_while_the_smtp_server_is_down_and_sent_once_it_is_back(make_settings, smtp):
    clock = ManualClock()
    settings = _settings(make_settings, smtp)  # the server is not started yet
    async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
        await _carer_ready(http, settings)
        await asyncio.sleep(1)
        await publish(settings, [finding("stu-n", Category.LEFT_BEHIND, Severity.MEDIUM, recorded_at=clock.now())])
        pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=2)
        try:
            row = await wait_for(
                lambda: pool.fetchrow("SELECT * FROM email_deliveries WHERE attempts >= 1"), timeout=30
            )
            assert row["state"] == "pending" and row["sent_at"] is None
            assert "Connect" in row["last_error"] or "refused" in row["last_error"].lower()
            assert row["next_attempt_at"] > clock.now()  # not hammered: the next try waits for the backoff

            await asyncio.to_thread(smtp.start)
            try:
                clock.advance(timedelta(minutes=1))  # the backoff has passed
                [mail] = await _mails(smtp, 1)
                assert mail["Subject"] == "[HSS] A care case was assigned to you"
                # The outcome commits just after the SMTP server has the mail.
                sent = await wait_for(lambda: pool.fetchrow("SELECT * FROM email_deliveries WHERE state = 'sent'"))
                assert sent["attempts"] >= 2
            finally:
                await asyncio.to_thread(smtp.stop)
        finally:
            await pool.close()


OFFICE, OFFICE_MAIL = "d-office", "office@district.example"


async def test_an_escalation_and_a_chased_referral_tell_the_administrators_of_the_level_once(
    make_settings, running_smtp
):
    """The case's missed first contact and the accepted referral nobody resolved both go up to the district: the
    district office (staff placed there) gets an inbox notification and one mail for each, written by the pass that
    escalated them, and nothing more when the scheduler's passes run twice at once (two replicas) and again. The
    department's answer told the case's carers in its own request; the due-soon sweep run twice at once tells them
    once."""
    smtp = running_smtp
    clock = ManualClock()
    settings: OutreachSettings = make_settings(
        OutreachSettings,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        scheduler_enabled=False,  # the test runs the deadlines' passes and the notification passes itself
    )
    office = bearer(role="district_admin", org_path=DISTRICT, staff_id=OFFICE)
    partner = bearer(role="department_partner", org_path=CITY, department="disabled_persons_federation")
    pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=6)

    async def told(kind: str) -> list[str]:
        rows = await pool.fetch("SELECT recipient_id FROM notifications WHERE kind = $1 ORDER BY 1", kind)
        return [r["recipient_id"] for r in rows]

    try:
        async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
            await publish(settings, [*school_staff(), staff(OFFICE, at=DISTRICT), student("stu-x")])
            r = await http.put("/api/v1/notifications/email", headers=office, json={"email": OFFICE_MAIL})
            assert r.status_code == 200, r.text
            await wait_for(lambda: pool.fetchval("SELECT count(*) = 5 FROM staff"), timeout=15)
            await publish(settings, [finding("stu-x", Category.DISABILITY, Severity.HIGH, recorded_at=clock.now())])
            ref = await wait_for(lambda: pool.fetchval("SELECT referral_id FROM referrals"))
            carers = [r["staff_id"] for r in await pool.fetch("SELECT DISTINCT staff_id FROM case_carers ORDER BY 1")]
            assert carers and await told("case_assigned") == carers
            assert (await http.post(f"/api/v1/referrals/{ref}/acknowledge", headers=partner)).status_code == 200
            assert await told("referral_answered") == []  # an acknowledgement is no answer
            assert (await http.post(f"/api/v1/referrals/{ref}/accept", headers=partner)).status_code == 200
            assert await told("referral_answered") == carers  # committed with the answer

            due = await pool.fetchval("SELECT escalation_due FROM cases")
            clock.advance(due - clock.now() - timedelta(hours=1))  # the first contact is due in an hour
            await asyncio.gather(notify_tick(pool, settings, clock), notify_tick(pool, settings, clock))
            await notify_tick(pool, settings, clock)
            assert await told("case_due_soon") == carers

            clock.advance(timedelta(days=30))  # no contact, and the referral not resolved: both go up
            passes = await asyncio.gather(tick(pool, settings, clock), tick(pool, settings, clock))
            done = [p for p in passes if p is not None]
            assert sum(p.escalated_cases for p in done) == 1 and sum(p.chased_referrals for p in done) == 1
            # The pass's transaction wrote the notices: no consumer in between.
            assert await told("case_escalated") == sorted([*carers, OFFICE])
            assert await told("referral_escalated") == sorted([*carers, OFFICE])
            again = await tick(pool, settings, clock)
            assert again is not None and (again.escalated_cases, again.chased_referrals) == (0, 0)

            await wait_for(lambda: _mailed(pool, settings, clock, smtp, 2), timeout=30)
            inbox = (await http.get("/api/v1/notifications", headers=office)).json()["items"]
            assert sorted((n["kind"], n["referral_id"]) for n in inbox) == [
                ("case_escalated", None),
                ("referral_escalated", ref),
            ]
            await asyncio.gather(notify_tick(pool, settings, clock), notify_tick(pool, settings, clock))
            subjects = sorted(m["Subject"] for m in mails_to(smtp, OFFICE_MAIL))
            assert subjects == [
                "[HSS] A care case was escalated",
                "[HSS] A referral was not answered or resolved in time",
            ]
            # The school's own leaders were not told of an escalation that went past them to the district.
            vp = bearer(role="school_admin", org_path=school(), staff_id="vp-1")
            assert all(
                n["kind"] != "referral_escalated"
                for n in (await http.get("/api/v1/notifications", headers=vp)).json()["items"]
            )
            # Each notice went out once on the notification topic, keyed by its recipient.
            notices = [
                e["data"]
                for e in (await written(settings, pool)).values()
                if e["type"] == "outreach.notification.created.v1"
            ]
            assert len(notices) == await pool.fetchval("SELECT count(*) FROM notifications")
            assert len({n["notification_id"] for n in notices}) == len(notices)
    finally:
        await pool.close()


async def _mailed(pool: Any, settings: OutreachSettings, clock: ManualClock, smtp: SmtpServer, n: int) -> bool:
    await notify_tick(pool, settings, clock)
    return len(mails_to(smtp, OFFICE_MAIL)) >= n
