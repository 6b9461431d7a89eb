"""Notifications for carers and teachers: case assigned, due soon, escalated, referral answered.

A notice is written in the transaction that records the fact it tells of, so it exists exactly when the fact does:
1. `publish` is the one way outreach records its case and referral facts' events (the reaction to findings, the
   scheduler, a department's answer, a leaver's hand-over, a merge): with the events it writes the inbox rows of
   the facts that tell someone (`domain.notifications.notices_for`), one `NotificationCreated` event per row on
   `outreach.notification.events` (the topic other channels subscribe to) and one queued mail per row. A
   redelivered finding, a scheduler pass run twice or on two replicas records no second fact, so no second notice;
   the rows are besides unique per source fact × recipient × kind.
2. `sweep_due_soon` (the background loop, on the service's clock) does the same for deadlines due soon, once per
   case and deadline.
3. `send_due_mails` (the background loop) sends due deliveries over SMTP; a failure is retried later with backoff.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
import asyncpg
from pydantic import BaseModel

from services.outreach.domain import notifications as rules
from services.outreach.domain.notifications import Notice
from services.outreach.settings import OutreachSettings
from services.outreach.store import directory
from services.outreach.store import notifications as store
from shared import pages, scope
from shared.auth import Principal
from shared.clock import Clock
from shared.context import TraceContext
from shared.contracts.outreach import (
    CaseAssigned,
    CaseEscalated,
    NotificationKind,
    ReferralAccepted,
    ReferralDeclined,
    ReferralEscalated,
    ReferralResolved,
)
from shared.db import try_xact_lock
from shared.events import Built
from shared.ids import new_ids
from shared.outbox import Row, insert_rows, outbox_rows
from shared.problems import not_found
from shared.web import Runtime, repeat
from shared.writes import Write

log = logging.getLogger(__name__)

FACTS = (CaseAssigned, CaseEscalated, ReferralAccepted, ReferralDeclined, ReferralResolved, ReferralEscalated)
NoticeFact = CaseAssigned | CaseEscalated | ReferralAccepted | ReferralDeclined | ReferralResolved | ReferralEscalated

Caused = tuple[TraceContext | None, Sequence[BaseModel]]
"""Events and their cause for the outbox (a consumed event's trace, or None for the current work)."""

Told = tuple[Built, str, Row]
"""A notice to store: its event (the row's columns), the id of the fact it tells of, and its event's outbox row."""


async def publish(conn: asyncpg.Connection, caused: Iterable[Caused]) -> None:
    """Record events in the outbox and, in the same transaction, the notices of the facts among them (see the module
    docstring); the source of a fact's notices is its event's id. The caller owns the transaction.

    Set-based, whatever the number of facts: one query for the carers (and one for the administrators) of every case
    concerned, the notices' events built as the contract's fields (`rules.created`: no model per notice), a cause's
    events and its notices' events serialised together (`outbox_rows`), then one statement for the notices with their
    mails and one for every outbox row."""
    caused = [(cause, events) for cause, events in caused if events]
    tell = await _audience(conn, [p for _, events in caused for p in events if isinstance(p, FACTS)])
    notes = [  # per cause: (index of the fact among its events, a notice, the fact's time)
        [(i, n, p.occurred_at) for i, p in enumerate(events) if isinstance(p, FACTS) for n in tell(p)]
        for _, events in caused
    ]
    created = iter(_events([(n, at) for ns in notes for _, n, at in ns]))
    rows: list[Row] = []
    told: list[Told] = []
    for (cause, events), ns in zip(caused, notes, strict=True):
        mine = list(itertools.islice(created, len(ns)))
        written = outbox_rows([*events, *mine], cause)
        told += [
            (e, written[i].event_id, row) for (i, _, _), e, row in zip(ns, mine, written[len(events) :], strict=True)
        ]
        rows += written
    await _store(conn, rows, told)


async def _audience(conn: asyncpg.Connection, facts: list[NoticeFact]) -> Callable[[NoticeFact], list[Notice]]:
    """Who each of these facts tells (`domain.notifications.notices_for`), read set-based: the carers of every case
    concerned and the staff of every level escalated to in one query each (a new assignment names its carers)."""
    need = sorted({p.case_id for p in facts if not isinstance(p, CaseAssigned)})
    carers = await store.list_carers_of_cases(conn, need) if need else {}
    levels = sorted({lvl for p in facts if (lvl := rules.escalated_to(p))})
    staff = await directory.list_staff_at(conn, levels) if levels else []

    def tell(p: NoticeFact) -> list[Notice]:
        level = rules.escalated_to(p)
        return rules.notices_for(p, carers.get(p.case_id, []), rules.administrators(level, staff) if level else [])

    return tell


def _events(notices: list[tuple[Notice, datetime]]) -> list[Built]:
    """The event of each notice, under a new notification id, created at the given time (`rules.created`)."""
    return [rules.created(nid, n, at) for nid, (n, at) in zip(new_ids(len(notices)), notices, strict=True)]


async def _store(conn: asyncpg.Connection, rows: list[Row], told: list[Told]) -> int:
    """Insert the notices with their queued mails, then the outbox rows less the events of notices already there
    (same source, recipient and kind: a due-soon sweep run twice); answers how many notices are new."""
    notices = [
        (f["notification_id"], f["recipient_id"], f["kind"], source, f["case_id"], f["referral_id"], f["link"], at)
        for (_, f), source, _ in told
        for at in [f["occurred_at"]]
    ]
    skipped = await store.insert_notifications(conn, notices) if notices else set()
    if skipped:
        gone = {row.event_id for (_, f), _, row in told if f["notification_id"] in skipped}
        rows = [r for r in rows if r.event_id not in gone]
    await insert_rows(conn, rows)
    return len(told) - len(skipped)


async def sweep_due_soon(conn: asyncpg.Connection, window_hours: float, now: datetime, limit: int) -> int:
    """Tell the carers of open cases whose next deadline is within the window (once per case and deadline)."""
    if window_hours <= 0:
        return 0
    due = await store.list_cases_due_between(conn, now, now + timedelta(hours=window_hours), limit)
    due = [c for c in due if rules.due_soon(c["escalation_due"], now, window_hours)]
    carers = await store.list_carers_of_cases(conn, [c["case_id"] for c in due])
    notes = [
        (rules.due_soon_source(c["case_id"], c["escalation_due"]), n)
        for c in due
        for n in rules.notices(NotificationKind.CASE_DUE_SOON, c["case_id"], carers.get(c["case_id"], []))
    ]
    created = _events([(n, now) for _, n in notes])
    rows = outbox_rows(created)
    return await _store(
        conn, rows, [(e, source, row) for (source, _), e, row in zip(notes, created, rows, strict=True)]
    )


async def send_due_mails(pool: asyncpg.Pool, settings: OutreachSettings, now: datetime) -> int:
    """Send the deliveries whose time has come (one SMTP session per pass); returns how many were sent.

    The rows stay locked while their mails go out and their outcome commits with them: a crash in between sends
    that mail again later (at-least-once; its Message-ID is the notification's id)."""
    async with pool.acquire() as conn, conn.transaction():
        due = await store.list_deliveries_due(conn, now, settings.email_batch_size)
        if not due:
            return 0
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host, port=settings.smtp_port, timeout=settings.smtp_timeout_seconds
        )
        try:
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            for d in due:
                await _failed(conn, settings, d, exc, now)
            return 0
        try:
            return sum([await _send(conn, smtp, settings, d, now) for d in due])
        finally:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


async def _send(
    conn: asyncpg.Connection, smtp: aiosmtplib.SMTP, settings: OutreachSettings, d: Any, now: datetime
) -> int:
    """One delivery over the open session: 1 when sent; no address → parked (the inbox has it); failure → retry."""
    if d["email"] is None:
        await store.update_delivery(conn, d["notification_id"], "no_address", d["attempts"], None, None, now)
        return 0
    kind = NotificationKind(d["kind"])
    msg = rules.email(d["notification_id"], kind, d["link"], d["email"], settings.smtp_sender, settings.email_link_base)
    try:
        await smtp.send_message(msg)
    except (aiosmtplib.SMTPException, OSError) as exc:
        await _failed(conn, settings, d, exc, now)
        return 0
    await store.update_delivery(conn, d["notification_id"], "sent", d["attempts"] + 1, None, None, now)
    return 1


async def _failed(conn: asyncpg.Connection, settings: OutreachSettings, d: Any, exc: Exception, now: datetime) -> None:
    attempts = d["attempts"] + 1
    state = "failed" if rules.gives_up(attempts, settings.email_max_attempts) else "pending"
    retry = rules.retry_at(attempts, now, settings.email_retry_seconds, settings.email_retry_max_seconds)
    log.warning("notification mail not sent", extra={"attempts": attempts, "state": state, "error": repr(exc)})
    await store.update_delivery(conn, d["notification_id"], state, attempts, retry, repr(exc)[:500], now)


async def tick(pool: asyncpg.Pool, settings: OutreachSettings, clock: Clock) -> tuple[int, int]:
    """One pass: due-soon notices (one instance at a time), then due mails (replicas share them row by row)."""
    now = clock.now()
    created = 0
    async with pool.acquire() as conn, conn.transaction():
        if await try_xact_lock(conn, f"notify:{settings.db_schema}"):
            created = await sweep_due_soon(conn, settings.rules.notify_due_soon_hours, now, settings.email_batch_size)
    sent = await send_due_mails(pool, settings, now) if settings.smtp_host else 0
    return created, sent


async def run(runtime: Runtime) -> None:
    """The background task: a pass every interval, on the service's clock."""
    settings = runtime.settings
    assert isinstance(settings, OutreachSettings)

    async def step() -> bool:
        await tick(runtime.pool, settings, runtime.clock)
        return False

    await repeat("notifications pass", step, settings.notify_interval_seconds)


# -- the in-app inbox -------------------------------------------------------------------------------------------


def _staff_of(principal: Principal) -> str:
    if not principal.staff_id:
        raise scope.forbidden("notifications are for staff: the token names no staff_id")
    return principal.staff_id


async def inbox(
    pool: asyncpg.Pool, principal: Principal, unread: bool, cursor: str | None, limit: int
) -> dict[str, Any]:
    """The caller's own notifications, newest first."""
    after = pages.after(cursor, datetime, str)
    rows = await store.list_inbox(pool, _staff_of(principal), unread, after, limit + 1)
    return pages.page([dict(r) for r in rows], limit, lambda r: (r["created_at"], r["notification_id"]))


async def mark_read(w: Write, notification_id: str) -> dict[str, Any]:
    """Mark one of the caller's notifications read; 404 for anyone else's (its existence is not revealed)."""
    now = w.clock.now()
    row = await store.update_read(w.conn, notification_id, _staff_of(w.principal), now)
    if row is None:
        raise not_found("notification")
    return dict(row)


async def set_email(w: Write, email: str) -> dict[str, Any]:
    """The caller's own address for the email channel."""
    now = w.clock.now()
    return dict(await store.upsert_email(w.conn, _staff_of(w.principal), email, now))


async def get_email(pool: asyncpg.Pool, principal: Principal) -> dict[str, Any]:
    row = await store.get_email(pool, _staff_of(principal))
    if row is None:
        raise not_found("email address")
    return dict(row)
