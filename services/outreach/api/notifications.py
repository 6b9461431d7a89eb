"""The in-app inbox of notifications and the caller's email address for the email channel (own data only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.outreach.schemas import EmailIn, EmailOut, NotificationOut
from services.outreach.usecases import notifications
from shared import openapi, pages
from shared.auth import CurrentPrincipal
from shared.web import Pool
from shared.writes import Writes

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])


@router.get("", response_model=pages.Page[NotificationOut])
async def list_notifications(
    principal: CurrentPrincipal,
    pool: Pool,
    unread: bool = False,
    limit: pages.Limit = 50,
    cursor: pages.Cursor = None,
) -> Any:
    """The caller's notifications (case assigned, due soon, escalated, referral answered), newest first; staff
    tokens only (the token's staff_id is the recipient)."""
    return await notifications.inbox(pool, principal, unread, cursor, limit)


@router.post(
    "/{notification_id}/read",
    response_model=NotificationOut,
    responses=openapi.errors(404),
)
async def mark_notification_read(notification_id: str, w: Writes) -> Any:
    """Mark one of the caller's notifications read (again: no change)."""
    return await w.run(notifications.mark_read, notification_id)


@router.get("/email", response_model=EmailOut, responses=openapi.errors(404))
async def get_notification_email(principal: CurrentPrincipal, pool: Pool) -> Any:
    """The caller's address for notification mails (404 when none was given: no mail is sent)."""
    return await notifications.get_email(pool, principal)


@router.put("/email", response_model=EmailOut)
async def set_notification_email(body: EmailIn, w: Writes) -> Any:
    """Set the caller's own address for notification mails (the directory holds none)."""
    return await w.run(notifications.set_email, body.email)
