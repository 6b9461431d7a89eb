"""Fault drill: kill -9 of every service once during the scripted city (one replica each, one broker)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.e2e.city import CityRun, assert_exact_outcome, metric, query, run_city, until

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]


async def test_kill_9_of_every_service_once_changes_nothing(stack, undisturbed):
    """Committees dies in the middle of the import (its one transaction rolls back, the job is resumed), visits
    with single visits waiting in its group commit (their teachers lose the answer, look and resend), outreach
    while it applies findings, reporting while it projects them. Each is restarted at once."""
    _calm_run, calm = undisturbed
    killed: list[str] = []

    async def kill_and_restart(run: CityRun, name: str) -> None:
        proc = run.procs[name][0]
        await asyncio.to_thread(run.crash, proc)
        killed.append(name)
        await asyncio.to_thread(proc.start)

    async def committees_mid_import(run: CityRun) -> None:
        schema = run.schema("committees")

        async def running() -> bool:
            sql = f'SELECT count(*) FROM "{schema}".imports WHERE status = $1'
            return await query(run, sql, "running", service="committees") > 0

        await until(running, "the import to run")
        await kill_and_restart(run, "committees")

    async def consumers_and_visits_mid_campaign(run: CityRun) -> None:
        visits = run.procs["visits"][0]

        async def recording() -> bool:
            return await metric(visits, "http_requests_total", method="POST", route="/api/v1/visits") >= 5

        await until(recording, "teachers to record visits one by one")
        await kill_and_restart(run, "visits")

        async def applying() -> bool:
            return await metric(run.procs["outreach"][0], "events_consumed_total", group="outreach.findings") > 0

        await until(applying, "outreach to apply findings")
        await kill_and_restart(run, "outreach")
        await kill_and_restart(run, "reporting")

    run = CityRun(stack, "k" + uuid.uuid4().hex[:8])
    await asyncio.to_thread(run.start)
    try:
        out = await run_city(
            run, during_import=committees_mid_import, during_campaign=consumers_and_visits_mid_campaign
        )
        assert killed == ["committees", "visits", "outreach", "reporting"]
        assert out["stats"]["lost_answers"] > 0, "visits must have died with single visits waiting for their answer"
        await assert_exact_outcome(run, out, calm)
        print(f"every service killed once: {out['stats']['lost_answers']} single visits lost their answer")
    finally:
        await run.stop()
