"""HTTP API of the outreach service (thin routes over the store and the domain rules)."""

from __future__ import annotations

from fastapi import APIRouter

from services.outreach.api import cases, groups, referrals
from shared import audit
from shared.clock import Clock


def routers(clock: Clock) -> list[APIRouter]:
    """Every router, sharing one clock."""
    return [cases.router(clock), referrals.router(clock), groups.router(clock), audit.reads_router("outreach")]
