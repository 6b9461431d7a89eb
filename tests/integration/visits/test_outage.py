"""The visits API while its PostgreSQL crashes: the group-commit writer answers 503 problem+json, then recovers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.visits.app import create
from services.visits.settings import VisitsSettings
from shared.testing.fixtures import serve, wait_for
from tests.integration.test_kit_outages import crash, private_postgres
from tests.integration.visits.conftest import DISTRICT, bearer, completed

pytestmark = pytest.mark.integration

TEACHER = bearer("teacher", f"{DISTRICT}/s0001", staff_id="T000001")


async def test_group_committed_visits_get_503_while_the_database_is_down(make_settings, unique):
    async with private_postgres(unique) as pg:
        settings = make_settings(VisitsSettings, database_url=pg.address, db_acquire_timeout_seconds=2.0)
        async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

            async def record_many() -> list[httpx.Response]:
                # Concurrent visits without an Idempotency-Key: they share the writer's group transactions.
                return await asyncio.gather(
                    *(http.post("/api/v1/visits", json=completed(f"A-{i}"), headers=TEACHER) for i in range(8))
                )

            before = await record_many()
            assert {r.status_code for r in before} == {404}, before[0].text  # the writer ran: no such assignment
            await asyncio.to_thread(crash, pg)
            for r in await record_many():
                assert r.status_code == 503, r.text
                assert r.headers["content-type"] == "application/problem+json"
                assert r.headers["retry-after"] == "2"
            await asyncio.to_thread(pg.start)

            async def answered_again() -> bool:
                return {r.status_code for r in await record_many()} == {404}

            await wait_for(answered_again, timeout=30, interval=0.5)
