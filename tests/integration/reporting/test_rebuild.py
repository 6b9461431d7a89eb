"""A rebuild from offset 0 reproduces the live figures exactly and is swapped in without downtime."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from services.reporting.usecases.rebuild import rebuild
from tests.integration.reporting import scenario
from tests.integration.reporting.expected import EXPECTED, mismatches

pytestmark = pytest.mark.integration

NODES = [
    scenario.CITY,
    scenario.D1,
    scenario.D2,
    scenario.S1,
    scenario.S2,
    scenario.S3,
    scenario.S1G1,
    scenario.S1C1,
    scenario.S1C2,
    scenario.S2C1,
    scenario.S3C1,
]


async def snapshot(reporting) -> dict:
    out: dict[tuple[str, ...], object] = {}
    for node in NODES:
        for campaign in ("", scenario.CAMPAIGN):
            out[(node, campaign)] = (await reporting.summary(node, campaign))["figures"]
            r = await reporting.get("/api/v1/series", org_path=node, campaign_id=campaign)
            out[(node, campaign, "series")] = r.json()["days"]
    return out


async def test_rebuild_reproduces_live_figures_and_swaps_without_downtime(reporting):
    messages = scenario.envelopes(scenario.all_events())
    await scenario.publish(reporting.settings, messages)
    await reporting.converge(messages)
    live = await snapshot(reporting)

    # Readers keep getting answers during the rebuild and the swap.
    stop = asyncio.Event()
    statuses: list[int] = []

    async def read_loop() -> None:
        async with httpx.AsyncClient(base_url=reporting.url, timeout=30) as c:
            while not stop.is_set():
                r = await c.get(
                    "/api/v1/summary",
                    params={"org_path": scenario.CITY},
                    headers={"Authorization": f"Bearer {reporting.token}"},
                )
                statuses.append(r.status_code)
                await asyncio.sleep(0.02)

    reader = asyncio.create_task(read_loop())
    stats = await rebuild(reporting.settings)
    stop.set()
    await reader
    assert stats.events == len(scenario.on_read_topics(messages))
    assert stats.skipped == 0
    assert stats.old_schema is not None
    assert statuses and set(statuses) == {200}

    rebuilt = await snapshot(reporting)
    assert rebuilt == live
    for path in EXPECTED:
        assert mismatches(path, (await reporting.summary(path, scenario.CAMPAIGN))["figures"]) == {}

    # The live consumer keeps projecting into the swapped-in schema.
    extra = scenario.campaign()[1].model_copy(update={"assignment_id": "a-new", "family_id": "f-new"})
    await scenario.publish(reporting.settings, scenario.envelopes([extra]))

    async def counted() -> bool:
        doc = await reporting.summary(scenario.CITY, scenario.CAMPAIGN)
        return doc["figures"]["assignments"] == 7 and doc["figures"]["families"]["assigned"] == 6

    from shared.testing.fixtures import wait_for

    await wait_for(counted, timeout=30)
    await reporting.db.execute(f'DROP SCHEMA IF EXISTS "{stats.old_schema}" CASCADE')
