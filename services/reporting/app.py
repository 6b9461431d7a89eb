"""The reporting service: consumes every topic into read models, serves indicators and the dashboard."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import asyncpg

from services.reporting import api, gauges
from services.reporting.handlers import handlers
from services.reporting.settings import ReportingSettings
from services.reporting.store.refresh import refresh
from shared import db
from shared.web import Runtime, ServiceSpec, create_app

log = logging.getLogger(__name__)


async def refresher(runtime: Runtime) -> None:
    """Fold what the consumers changed into the materialised figures, every refresh interval (or, when refreshes
    are slow, as often as `refresh_max_share` of the time allows)."""
    s = runtime.settings
    assert isinstance(s, ReportingSettings)
    last_sweep = time.monotonic()
    last_gauges = 0.0
    conn: asyncpg.Connection | None = None
    while True:
        started = time.monotonic()
        try:
            if conn is None or conn.is_closed():
                # Its own connection: the pool's 30 s statement cap is too short for a full refresh of a city.
                conn = await db.connect(s.database_url, s.db_schema)
            sweep = time.monotonic() - last_sweep >= s.overdue_sweep_seconds
            await refresh(conn, s.db_schema, overdue_sweep=sweep)
            if sweep:
                last_sweep = time.monotonic()
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
        took = time.monotonic() - started
        await asyncio.sleep(max(s.refresh_interval_seconds, took * (1 - s.refresh_max_share) / s.refresh_max_share))


def build_spec(settings: ReportingSettings) -> ServiceSpec:
    """Reporting owns no topics; one consumer group projects every topic of the three contracts."""
    return ServiceSpec(
        settings=settings,
        migrations=Path(__file__).parent / "migrations",
        topics=[],
        routers=[api.router, api.pages],
        consumers={settings.consumer_group: handlers()},
        background=[refresher],
        title="reporting service",
        description="Indicators per campaign and org unit (class → city), exports and the dashboard.",
    )


def create(settings: ReportingSettings | None = None) -> Any:
    """The FastAPI app."""
    return create_app(build_spec(settings or ReportingSettings()))
