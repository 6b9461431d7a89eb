"""Fault drills that kill infrastructure under the scripted city: the only Kafka broker, and PostgreSQL. Each
test runs its own broker or database server (see conftest), so the shared stack is never touched."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from shared.devstack import StackInfo
from shared.devstack.component import port_open
from shared.devstack.kafka import Kafka
from shared.devstack.postgres import Postgres
from shared.devstack.services import SERVICES
from tests.e2e.city import CityRun, assert_exact_outcome, metric, query, run_city, until
from tests.faults.prometheus import RULES, Prometheus, quick_rules, wait_for_alert

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]

OUTBOX_ALERT = "OutboxStuck"
BROKER_DOWN_SECONDS = 20


async def unpublished(run: CityRun, name: str) -> int:
    """Rows of the service's outbox not yet acknowledged by Kafka."""
    return int(await query(run, f'SELECT count(*) FROM "{run.schema(name)}".outbox', service=name))


async def test_kill_9_of_the_only_broker_for_20_s_changes_nothing(stack, undisturbed, own_kafka: Kafka, own_home):
    """The broker dies as the campaign starts and comes back 20 s later. Meanwhile every API stays ready and
    takes the campaign's writes, the outboxes grow, every replica reports the backlog and the outbox alert
    fires in a real Prometheus; afterwards everything drains, the alert resolves, and the outcome is exact."""
    _calm_run, calm = undisturbed
    run = CityRun(StackInfo(stack.database_url, own_kafka.address), "b" + uuid.uuid4().hex[:8])
    await asyncio.to_thread(run.start)
    prom = Prometheus(Path(own_home), run, quick_rules(RULES.read_text(), OUTBOX_ALERT))
    await asyncio.to_thread(prom.start)
    seen: dict[str, object] = {}

    async def broker_outage(run: CityRun) -> None:
        visits = run.procs["visits"][0]

        async def recording() -> bool:
            return await metric(visits, "http_requests_total", method="POST", route="/api/v1/visits") >= 1

        await until(recording, "teachers to record visits")
        pid = own_kafka.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        down_at = time.monotonic()
        # Gone for clients too: the JVM's last threads may hold its port a moment after the process is reaped.
        await until(lambda: asyncio.to_thread(lambda: not port_open("127.0.0.1", own_kafka.port)), "the broker to die")
        # APIs keep answering: every replica ready (readiness does not depend on Kafka) ...
        await asyncio.sleep(3)  # (a probe that opened a connection to the broker would have failed by now)
        ready = await asyncio.gather(*(asyncio.to_thread(p.get, "/readyz") for p in run.live()))
        seen["ready"] = [p.name for p, body in zip(run.live(), ready, strict=True) if body is not None]
        # ... the campaign's writes are accepted and wait in the outbox, which every replica reports ...
        await until(lambda: unpublished(run, "visits"), "visits' outbox to grow")
        await until(lambda: metric(visits, "outbox_pending_events"), "visits to report its outbox backlog", timeout=30)
        # ... and the outbox alert fires.
        await asyncio.to_thread(wait_for_alert, prom, OUTBOX_ALERT, True, 60, service="visits")
        seen["alert_after"] = time.monotonic() - down_at
        seen["backlog"] = await unpublished(run, "visits")
        await asyncio.sleep(max(0.0, BROKER_DOWN_SECONDS - (time.monotonic() - down_at)))
        await asyncio.to_thread(own_kafka.start)

    try:
        out = await run_city(run, during_campaign=broker_outage)
        assert seen["ready"] == list(SERVICES), "every API must stay ready while the broker is down"
        assert isinstance(seen["backlog"], int) and seen["backlog"] > 0
        # Drained (run_city waited for it): the alert resolves and every outbox is empty.
        resolved_after = await asyncio.to_thread(wait_for_alert, prom, OUTBOX_ALERT, False, 60)
        print(
            f"broker down: visits' outbox held {seen['backlog']} events, {OUTBOX_ALERT} fired "
            f"{seen['alert_after']:.1f} s after the kill, resolved {resolved_after:.1f} s after the city settled"
        )
        for name in SERVICES:
            assert await unpublished(run, name) == 0
        await assert_exact_outcome(run, out, calm)
    finally:
        await asyncio.to_thread(prom.stop)
        await run.stop()


async def test_postgresql_crash_under_all_four_services_changes_nothing(stack, undisturbed, own_postgres: Postgres):
    """PostgreSQL crashes (`pg_ctl stop -m immediate`: no checkpoint, crash recovery on start) while the
    teachers record visits and the consumers apply them, and is started again after a few seconds."""
    _calm_run, calm = undisturbed
    run = CityRun(StackInfo(own_postgres.address, stack.kafka_bootstrap), "p" + uuid.uuid4().hex[:8])
    await asyncio.to_thread(run.start)
    crashed: list[float] = []

    async def database_crash(run: CityRun) -> None:
        visits = run.procs["visits"][0]

        async def recording() -> bool:
            return await metric(visits, "http_requests_total", method="POST", route="/api/v1/visits") >= 5

        await until(recording, "teachers to record visits")
        data = str(own_postgres.data)
        await asyncio.to_thread(own_postgres._run, "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        crashed.append(time.monotonic())
        await asyncio.sleep(5)
        await asyncio.to_thread(own_postgres.start)

    try:
        out = await run_city(run, during_campaign=database_crash)
        assert crashed
        await assert_exact_outcome(run, out, calm)
    finally:
        await run.stop()
