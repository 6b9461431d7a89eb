"""Fixtures: a running visits service fed with a synthetic district through committees' events."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.visits.app import create
from services.visits.domain.checklist import load
from services.visits.settings import VisitsSettings
from shared.auth import issue_token
from shared.clock import local_date, midday_of
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.visits.directory import Directory, build_district, delete_topics, publish

DISTRICT = "/620400/620402"
TODAY = local_date(datetime.now(UTC))  # the bureau's date, as the services count "today"
# The service's clock runs from noon of TODAY, so a run that crosses the bureau's midnight keeps one "today".
CLOCK = midday_of(TODAY)


def bearer(role: str, org_path: str, staff_id: str | None = None) -> dict[str, str]:
    return {"Authorization": "Bearer " + issue_token(role=role, org_path=org_path, staff_id=staff_id)}


def checklist(no_note: bool = False) -> list[dict[str, Any]]:
    items = load().items(load().current)
    return [{"item_id": i.id, "answer": "yes", "note": "ok" if no_note else None} for i in items]


def completed(assignment_id: str, findings: list[dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "assignment_id": assignment_id,
        "status": "completed",
        "visited_on": TODAY.isoformat(),
        "mode": "in_home",
        "duration_minutes": 40,
        "participants": {"teacher_ids": [], "guardian_ids": []},
        "checklist": checklist(),
        "guidance_topics": ["reading_at_home"],
        "findings": findings or [],
        "note": "家长很配合 (private note, stays in visits)",
    }
    body.update(over)
    return body


@dataclass
class Env:
    """A running service and what the test needs to drive it."""

    http: httpx.AsyncClient
    settings: VisitsSettings
    directory: Directory
    db: asyncpg.Connection

    async def count(self, table: str, where: str = "true") -> int:
        return int(await self.db.fetchval(f'SELECT count(*) FROM "{self.settings.db_schema}".{table} WHERE {where}'))

    async def events(self, topic: str, expect: int | None = None) -> list[dict[str, Any]]:
        """Messages on a visits topic, once the outbox has drained."""
        await wait_for(self._drained)
        return await read_topic(
            self.settings.kafka_bootstrap_servers, self.settings.topic(topic), expect=expect, idle=0.5
        )

    async def _drained(self) -> bool:
        return await self.count("outbox") == 0

    async def launch(self, org_path: str = DISTRICT, **over: Any) -> dict[str, Any]:
        """Create and launch a campaign as the district admin; the launch response."""
        admin = bearer("district_admin", DISTRICT)
        body = {
            "name": "2026 autumn home visits",
            "org_path": org_path,
            "starts_on": (TODAY - timedelta(days=10)).isoformat(),
            "ends_on": (TODAY + timedelta(days=30)).isoformat(),
            **over,
        }
        r = await self.http.post("/api/v1/campaigns", json=body, headers=admin)
        assert r.status_code == 201, r.text
        r = await self.http.post(f"/api/v1/campaigns/{r.json()['campaign_id']}/launch", headers=admin)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()
        return doc

    async def assignments(self, campaign_id: str) -> list[asyncpg.Record]:
        return await self.db.fetch(
            f'SELECT * FROM "{self.settings.db_schema}".assignments WHERE campaign_id = $1 ORDER BY family_id',
            campaign_id,
        )


@pytest.fixture
async def env(make_settings, raw_conn) -> AsyncIterator[Env]:
    """The service on a real port, with its directory copy loaded from published committees events."""
    # Two partitions per topic keep per-key order meaningful while sparing the shared broker's memory.
    settings = make_settings(VisitsSettings, topic_partitions=2)
    directory = build_district()
    build_district("620403", schools=1, classes=2, families_per_class=3, directory=directory)  # another district
    await publish(settings, directory.events)
    async with serve(create(settings, CLOCK)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        e = Env(http, settings, directory, raw_conn)
        await wait_for(lambda: _loaded(e), timeout=60)
        yield e
    await delete_topics(settings.kafka_bootstrap_servers, settings.topic_prefix)


async def _loaded(e: Env) -> bool:
    """Every directory event applied (each topic is consumed independently, so check all four tables)."""
    want = Counter(type(ev).__name__ for ev in e.directory.events)
    return (
        await e.count("students") == want["StudentRegistered"]
        and await e.count("families") == want["FamilyRegistered"]
        and await e.count("staff") == want["StaffRegistered"]
        and await e.count("org_units") == want["OrgUnitRegistered"]
    )
