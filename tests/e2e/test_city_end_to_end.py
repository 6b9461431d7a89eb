"""The whole city flow across the four services running as real processes, and the same flow under crashes."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared.devstack.postgres import SERVICE_LOGIN
from tests.e2e.city import (
    CityRun,
    assert_cases_and_referrals_follow_the_findings,
    assert_every_event_applied_once,
    assert_exact_outcome,
    assert_reporting_equals_the_owners,
    query,
    run_city,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


async def test_cases_and_referrals_are_exactly_those_the_findings_call_for(undisturbed):
    _run, out = undisturbed
    assert_cases_and_referrals_follow_the_findings(out)


async def test_reporting_equals_the_owners_data(undisturbed):
    run, out = undisturbed
    await assert_reporting_equals_the_owners(run, out)


async def test_every_event_is_applied_by_every_group_that_handles_it(undisturbed):
    run, _out = undisturbed
    applied = await assert_every_event_applied_once(run)
    assert applied["reporting.projections"] > 1000
    assert applied["outreach.findings"] > 20


async def test_kill_9_of_outreach_and_reporting_during_the_campaign_changes_nothing(stack, undisturbed):
    _calm_run, calm = undisturbed
    killed = []

    async def crash_and_restart(run: CityRun) -> None:
        # Kill both consumers once outreach is in the middle of applying findings.
        outreach, reporting = run.procs["outreach"][0], run.procs["reporting"][0]
        while "outreach.findings" not in (await asyncio.to_thread(outreach.get, "/metrics") or ""):
            await asyncio.sleep(0.05)
        for proc in (outreach, reporting):
            await asyncio.to_thread(run.crash, proc)
            killed.append(proc.name)
        await asyncio.sleep(1)
        for proc in (outreach, reporting):
            await asyncio.to_thread(proc.start)

    run = CityRun(stack, "f" + uuid.uuid4().hex[:8])
    await asyncio.to_thread(run.start)
    try:
        out = await run_city(run, during_campaign=crash_and_restart)
        assert killed == ["outreach", "reporting"]
        await assert_exact_outcome(run, out, calm)
    finally:
        await run.stop()


async def test_the_services_log_in_as_a_role_without_ddl_rights(undisturbed):
    """devstack runs each service's migrations as the owner before it starts, then the service as `hss_app`
    (member of `hss_service`), as compose and Kubernetes do: the whole city above ran without DDL rights."""
    run, _out = undisturbed
    users = await query(
        run,
        "SELECT array_agg(DISTINCT usename::text) FROM pg_stat_activity WHERE application_name = ANY($1)",
        [run.schema(name) for name in run.procs],
    )
    assert users == [SERVICE_LOGIN]


async def test_each_service_runs_in_its_own_database(undisturbed):
    """devstack gives each service process a database of its own, as compose and Kubernetes do: the whole city
    above ran with every service's sessions in its own database (a snapshot held open in reporting's does not keep
    the rows visits' relay deleted alive for its reads)."""
    run, _out = undisturbed
    sessions = await query(
        run,
        "SELECT array_agg(DISTINCT application_name || ' in ' || datname) FROM pg_stat_activity"
        " WHERE application_name = ANY($1)",
        [run.schema(name) for name in run.procs],
    )
    assert sorted(sessions) == sorted(f"{run.schema(name)} in {name}" for name in run.procs)
