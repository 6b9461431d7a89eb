"""Fixtures: a running reporting service on the real stack, fed with scripted contract events."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from services.reporting.app import create
from services.reporting.domain.projection import USED
from services.reporting.settings import ReportingSettings
from services.reporting.store.refresh import LOGGED
from shared.auth import issue_token
from shared.testing.fixtures import serve, wait_for
from tests.integration.reporting import scenario

# What a refresh has still to fold: the dirty leaves and the fact change logs.
PENDING_TABLES = ("dirty_leaves", *(f"{t}_log" for t in LOGGED))


@dataclass
class Running:
    """A running reporting service and what a test needs to talk to it."""

    settings: ReportingSettings
    url: str
    db: asyncpg.Connection
    token: str

    @property
    def schema(self) -> str:
        return self.settings.db_schema

    async def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as c:
            return await c.get(path, params=params, headers={"Authorization": f"Bearer {token or self.token}"})

    async def summary(self, org_path: str, campaign_id: str = "") -> dict[str, Any]:
        r = await self.get("/api/v1/summary", org_path=org_path, campaign_id=campaign_id)
        assert r.status_code == 200, r.text
        return r.json()

    async def converge(self, messages: list[tuple[str, str, bytes]], timeout: float = 60) -> None:
        """Wait until every event the projection reads (`USED`; the others get no inbox row) was applied, each once,
        and the refresh has folded all of them into the figures."""
        unique_events = len({e["id"] for e in map(orjson.loads, (m[2] for m in messages)) if e["type"] in USED})

        async def done() -> bool:
            applied = await self.db.fetchval(
                f'SELECT count(*) FROM "{self.schema}".inbox WHERE consumer = $1', self.settings.consumer_group
            )
            pending = await self.db.fetchval(
                "SELECT " + " + ".join(f'(SELECT count(*) FROM "{self.schema}".{t})' for t in PENDING_TABLES)
            )
            return applied >= unique_events and pending == 0

        await wait_for(done, timeout=timeout, interval=0.2)


@pytest.fixture
async def reporting(make_settings: Any, stack: Any) -> AsyncIterator[Running]:
    settings = make_settings(
        ReportingSettings, refresh_interval_seconds=0.1, gauges_interval_seconds=0.5, summary_cache_seconds=0
    )
    await scenario.ensure_topics(settings)
    db = await asyncpg.connect(stack.database_url)
    try:
        async with serve(create(settings), port=settings.http_port) as url:
            token = issue_token(role="bureau_admin", org_path=scenario.CITY)
            yield Running(settings, url, db, token)
    finally:
        with contextlib.suppress(Exception):
            await db.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
        await db.close()
