"""HTTP API of the outreach service: thin routers (parse, authorize, call one use case)."""

from __future__ import annotations

from fastapi import APIRouter

from services.outreach.api import cases, groups, notifications, referrals
from shared import audit


def routers() -> list[APIRouter]:
    """Every router of the service."""
    return [cases.router, referrals.router, groups.router, notifications.router, audit.reads_router("outreach")]
