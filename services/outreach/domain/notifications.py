"""Notification rules (pure): who is told what about which fact, what the mail says, when a failed mail is retried."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from services.outreach.domain.carers import StaffMember
from services.outreach.domain.orgs import school_path
from shared.contracts.common import StaffRole
from shared.contracts.outreach import (
    CaseAssigned,
    CaseEscalated,
    NotificationCreated,
    NotificationKind,
    ReferralEscalated,
    ReferralFacts,
)
from shared.events import Built

# A school's administrators: its leadership. At a district or the city, everyone placed there (its education office).
SCHOOL_ADMIN_ROLES = frozenset({StaffRole.PRINCIPAL, StaffRole.VICE_PRINCIPAL})


@dataclass(frozen=True)
class Notice:
    """One notification to create: recipient, kind and what it links to."""

    recipient_id: str
    kind: NotificationKind
    case_id: str
    referral_id: str | None
    link: str


def link_for(case_id: str, referral_id: str | None = None) -> str:
    """The API path a notification opens: the referral when it is about one, else the case (access checked there)."""
    return f"/api/v1/referrals/{referral_id}" if referral_id else f"/api/v1/cases/{case_id}"


def notices(
    kind: NotificationKind, case_id: str, recipients: list[str], referral_id: str | None = None
) -> list[Notice]:
    """One notice per distinct recipient, in a stable order (the case's carers, or the carers a case got)."""
    link = link_for(case_id, referral_id)
    return [Notice(r, kind, case_id, referral_id, link) for r in sorted(set(recipients))]


def created(notification_id: str, n: Notice, at: datetime) -> Built:
    """The `NotificationCreated` event of a notice stored under this id at this time, built as the contract's JSON
    fields (no model per notice; `tests/unit/outreach/test_notifications.py` checks it against the contract)."""
    return Built(
        NotificationCreated,
        {
            "notification_id": notification_id,
            "recipient_id": n.recipient_id,
            "kind": n.kind,
            "case_id": n.case_id,
            "referral_id": n.referral_id,
            "link": n.link,
            "occurred_at": at,
        },
    )


def administrators(level: str, staff: Iterable[StaffMember]) -> list[str]:
    """The administrators of the org level an escalation went to: at a school its principal and vice principals;
    at a district or the city every active staff member placed at that unit (its education office)."""
    at_school = school_path(level) == level and level.count("/") >= 3
    return sorted(s.staff_id for s in staff if s.org_path == level and (not at_school or s.roles & SCHOOL_ADMIN_ROLES))


def escalated_to(p: object) -> str | None:
    """The org level a fact sends a case or referral to (whose administrators are told), if it escalates."""
    return p.escalated_to if isinstance(p, CaseEscalated | ReferralEscalated) else None


def notices_for(
    p: CaseAssigned | CaseEscalated | ReferralFacts, carers: list[str], admins: list[str] | None = None
) -> list[Notice]:
    """What one fact tells whom: a new assignment its carers; a department's answer the case's carers; an
    escalation (a case's missed deadline, a referral unacknowledged or accepted and not resolved in time: chased)
    the case's carers and the administrators of the level it went to (`administrators`)."""
    if isinstance(p, CaseAssigned):
        return notices(NotificationKind.CASE_ASSIGNED, p.case_id, [c.staff_id for c in p.carers])
    if isinstance(p, CaseEscalated):
        return notices(NotificationKind.CASE_ESCALATED, p.case_id, [*carers, *(admins or [])])
    if isinstance(p, ReferralEscalated):
        return notices(NotificationKind.REFERRAL_ESCALATED, p.case_id, [*carers, *(admins or [])], p.referral_id)
    return notices(NotificationKind.REFERRAL_ANSWERED, p.case_id, carers, p.referral_id)


def due_soon(due: datetime | None, now: datetime, window_hours: float) -> bool:
    """A deadline is due soon when it is still ahead and no further than `window_hours` away (0 = never)."""
    return due is not None and window_hours > 0 and now < due <= now + timedelta(hours=window_hours)


def due_soon_source(case_id: str, due: datetime) -> str:
    """The fact a due-soon notice is about: this case's deadline (a new deadline is a new fact)."""
    return f"due:{case_id}:{due.isoformat()}"


SUBJECTS = {
    NotificationKind.CASE_ASSIGNED: "A care case was assigned to you",
    NotificationKind.CASE_DUE_SOON: "A care case's contact is due soon",
    NotificationKind.CASE_ESCALATED: "A care case was escalated",
    NotificationKind.REFERRAL_ANSWERED: "A department answered a referral of your case",
    NotificationKind.REFERRAL_ESCALATED: "A referral was not answered or resolved in time",
}


def email(notification_id: str, kind: NotificationKind, link: str, to: str, sender: str, base: str) -> EmailMessage:
    """The mail of one notification: minimal, no child data, a link to open after signing in.

    The Message-ID is the notification's id, so a mail sent twice (at-least-once) is recognisable as one."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"[HSS] {SUBJECTS[kind]}"
    msg["Message-ID"] = f"<{notification_id}@notifications.hss>"
    msg.set_content(
        f"{SUBJECTS[kind]}.\n\nOpen it after signing in: {base.rstrip('/')}{link}\n\n"
        "Your in-app inbox lists every notification (GET /api/v1/notifications).\n"
    )
    return msg


def retry_at(attempts: int, now: datetime, base_seconds: float, max_seconds: float) -> datetime:
    """When a mail that failed `attempts` times is tried again: exponential backoff from `base_seconds`, capped."""
    return now + timedelta(seconds=min(max_seconds, base_seconds * 2 ** max(0, attempts - 1)))


def gives_up(attempts: int, max_attempts: int) -> bool:
    """A delivery that failed this many times is parked as failed (an operator sees it; the inbox still has it)."""
    return attempts >= max_attempts
