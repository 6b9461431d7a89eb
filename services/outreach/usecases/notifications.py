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

import logging
from collections.abc import Iterable, Sequence
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
    NotificationCreated,
    NotificationKind,
    ReferralAccepted,
    ReferralDeclined,
    ReferralEscalated,
    ReferralResolved,
)
from shared.db import try_xact_lock
from shared.ids import new_id
from shared.outbox import Row, insert_rows, outbox_rows
from shared.problems import not_found
from shared.web import Runtime, repeat
from shared.writes import Write

log = logging.getLogger(__name__)

FACTS = (CaseAssigned, CaseEscalated, ReferralAccepted, ReferralDeclined, ReferralResolved, ReferralEscalated)
NoticeFact = CaseAssigned | CaseEscalated | ReferralAccepted | ReferralDeclined | ReferralResolved | ReferralEscalated

Caused = tuple[TraceContext | None, Sequence[BaseModel]]
"""Events and their cause for the outbox (a consumed event's trace, or None for the current work)."""

Group = tuple[TraceContext | None, str, datetime, list[Notice]]
"""The notices one fact causes: (its cause for the outbox, its source id, its time, the notices)."""


async def publish(conn: asyncpg.Connection, caused: Iterable[Caused]) -> list[Row]:
    """Record events in the outbox and, in the same transaction, the notices of the facts among them (see the module
    docstring); the source of a fact's notices is its event's id. The events and the notices' events are written in
    one outbox statement, the facts' first. The caller owns the transaction; answers the facts' events' rows."""
    caused = list(caused)
    rows = [row for cause, events in caused if events for row in outbox_rows(events, cause)]
    payloads = [(cause, p) for cause, events in caused for p in events]
    facts = [(cause, row.event_id, p) for (cause, p), row in zip(payloads, rows, strict=True) if isinstance(p, FACTS)]
    await insert_rows(conn, rows + (await _tell(conn, facts) if facts else []))
    return rows


async def _tell(conn: asyncpg.Connection, facts: list[tuple[TraceContext | None, str, NoticeFact]]) -> list[Row]:
    """Set-based: the carers of every case concerned and the staff of every level escalated to in one query each
    (a new assignment names its carers itself), the notices in one insert; answers their events' outbox rows."""
    need = sorted({p.case_id for _, _, p in facts if not isinstance(p, CaseAssigned)})
    carers = await store.list_carers_of_cases(conn, need) if need else {}
    levels = sorted({lvl for _, _, p in facts if (lvl := rules.escalated_to(p))})
    staff = await directory.list_staff_at(conn, levels) if levels else []
    groups: list[Group] = []
    for cause, source, p in facts:
        level = rules.escalated_to(p)
        admins = rules.administrators(level, staff) if level else []
        notices = rules.notices_for(p, carers.get(p.case_id, []), admins)
        if notices:
            groups.append((cause, source, p.occurred_at, notices))
    return await _create(conn, groups)


async def _create(conn: asyncpg.Connection, groups: list[Group]) -> list[Row]:
    """Insert the notices of each group with their queued mails; answers the outbox rows (not inserted) of an event
    for each notice not there before, under its cause."""
    per_group = [
        [(new_id(), n.recipient_id, str(n.kind), source, n.case_id, n.referral_id, n.link, at) for n in notices]
        for _, source, at, notices in groups
    ]
    rows = [r for rows in per_group for r in rows]
    if not rows:
        return []
    inserted = {r["notification_id"]: r for r in await store.insert_notifications(conn, rows)}
    events = [
        (cause, [_event(inserted[row[0]]) for row in rows if row[0] in inserted])
        for (cause, *_), rows in zip(groups, per_group, strict=True)
    ]
    return [row for cause, payloads in events if payloads for row in outbox_rows(payloads, cause)]


EVENT_FIELDS = ("notification_id", "recipient_id", "kind", "case_id", "referral_id", "link")


def _event(r: asyncpg.Record) -> NotificationCreated:
    """A stored notice's event: its own columns, at the time it was created."""
    return NotificationCreated(**{k: r[k] for k in EVENT_FIELDS}, occurred_at=r["created_at"])


async def sweep_due_soon(conn: asyncpg.Connection, window_hours: float, now: datetime, limit: int) -> int:
    """Tell the carers of open cases whose next deadline is within the window (once per case and deadline)."""
    if window_hours <= 0:
        return 0
    due = await store.list_cases_due_between(conn, now, now + timedelta(hours=window_hours), limit)
    due = [c for c in due if rules.due_soon(c["escalation_due"], now, window_hours)]
    carers = await store.list_carers_of_cases(conn, [c["case_id"] for c in due])
    groups: list[Group] = [
        (
            None,
            rules.due_soon_source(c["case_id"], c["escalation_due"]),
            now,
            rules.notices(NotificationKind.CASE_DUE_SOON, c["case_id"], carers.get(c["case_id"], [])),
        )
        for c in due
    ]
    rows = await _create(conn, groups)
    await insert_rows(conn, rows)
    return len(rows)


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
