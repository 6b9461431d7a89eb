"""The outreach service: special-group register, care cases reacting to findings, referrals, audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.outreach import api, handlers
from services.outreach.settings import OutreachSettings
from services.outreach.usecases import deadlines, notifications
from shared import audit, directory
from shared.clock import Clock, SystemClock
from shared.contracts.outreach import CASE, GROUP, NOTIFICATION, REFERRAL_TOPICS
from shared.web import Background, ServiceSpec, create_app

DESCRIPTION = """Care for special student groups: a visit finding about a left-behind, orphaned, disabled or
hardship child (or any high or urgent finding) opens or joins the child's one open care case within seconds,
with named carers and a first-contact deadline; overdue cases escalate up the org tree; departments answer
referrals through department-partner tokens; carers and teachers are notified (in-app inbox, email) when a case is
assigned, due soon, escalated or a referral answered; every detail read is audited. Students are pseudonymous ids:
no names, ID numbers, addresses or phone numbers are held here."""


def build_spec(settings: OutreachSettings, clock: Clock | None = None) -> ServiceSpec:
    """The service's parts; `clock` is injectable so tests can move time instead of waiting."""
    clock = clock or SystemClock()
    background: list[Background] = [audit.purge_loop]
    if settings.scheduler_enabled:
        background += [deadlines.run, notifications.run]
    return ServiceSpec(
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        kit_migrations=[directory.MIGRATIONS],
        topics=[GROUP, CASE, NOTIFICATION, *REFERRAL_TOPICS],
        routers=api.routers(),
        consumers=handlers.consumers(settings.rules, clock),
        background=background,
        title="outreach service",
        description=DESCRIPTION,
        clock=clock,
    )


def create(settings: OutreachSettings | None = None, clock: Clock | None = None) -> Any:
    """The FastAPI app."""
    return create_app(build_spec(settings or OutreachSettings(), clock))
