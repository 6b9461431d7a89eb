"""The reporting service: consumes the events its indicators need into read models, serves them and the dashboard."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import asyncpg

from services.reporting.api import routes
from services.reporting.handlers import handlers
from services.reporting.settings import ReportingSettings
from services.reporting.store.refresh import update_figures
from services.reporting.usecases import gauges
from shared import db
from shared.web import Runtime, ServiceSpec, create_app

log = logging.getLogger(__name__)


def _applied(runtime: Runtime) -> int:
    return sum(c.applied for c in runtime.consumers)


def _idle(runtime: Runtime) -> bool:
    """Every consumer's last poll found nothing new."""
    return all(c.idle for c in runtime.consumers)


async def refresher(runtime: Runtime) -> None:
    """Fold what the consumers changed into the materialised figures, every refresh interval.

    A refresh folds what changed since the last one (store/refresh.py), so its cost follows the events, not how
    often it runs. After a long one (a launch's assignments) and while events keep coming, the next refresh waits
    so that refreshing takes at most `refresh_max_share` of the time, but at most `refresh_max_wait_seconds`: a
    longer wait would only gather more changes into the next refresh — when refreshes recomputed every dirty class,
    the share alone let each refresh of a campaign cover ten times the previous one's duration, and the last one
    after the campaign took tens of seconds (issue 16). As soon as the consumers have nothing new (no event
    applied for an interval and their last polls empty), it runs at once, so the figures settle one refresh after
    the last event. Applied counts alone are not enough: a batch that takes longer than an interval to commit (a
    thousand events on a busy machine) looks like quiet.
    """
    s = runtime.settings
    assert isinstance(s, ReportingSettings)
    last_gauges = 0.0
    conn: asyncpg.Connection | None = None
    wait = 0.0  # after the last refresh, before the next while events keep coming
    ended = 0.0
    applied = -1
    while True:
        now, applied_now = time.monotonic(), _applied(runtime)
        quiet = applied_now == applied and _idle(runtime)
        applied = applied_now
        if now - ended < wait and not quiet:
            await asyncio.sleep(s.refresh_interval_seconds)
            continue
        started = now
        try:
            if conn is None or conn.is_closed():
                # Its own connection: the pool's 30 s statement cap is too short for a full refresh of a city.
                conn = await db.connect(s.database_url, s.db_schema)
            await update_figures(conn, s.db_schema)
            if time.monotonic() - last_gauges >= s.gauges_interval_seconds:
                await gauges.update(conn)
                last_gauges = time.monotonic()
        except asyncio.CancelledError:
            if conn is not None:
                conn.terminate()
            raise
        except Exception as exc:
            log.warning("reporting refresh failed, retrying: %r", exc)
            if conn is not None:
                conn.terminate()
                conn = None
        ended = time.monotonic()
        wait = min((ended - started) * (1 - s.refresh_max_share) / s.refresh_max_share, s.refresh_max_wait_seconds)
        await asyncio.sleep(s.refresh_interval_seconds)


def build_spec(settings: ReportingSettings) -> ServiceSpec:
    """Reporting owns no topics; one consumer group projects the three contracts' events that an indicator needs."""
    return ServiceSpec(
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        topics=[],
        routers=[routes.router, routes.pages],
        consumers={settings.consumer_group: handlers()},
        background=[refresher],
        title="reporting service",
        description="Indicators per campaign and org unit (class → city), exports and the dashboard.",
    )


def create(settings: ReportingSettings | None = None) -> Any:
    """The FastAPI app."""
    return create_app(build_spec(settings or ReportingSettings()))
