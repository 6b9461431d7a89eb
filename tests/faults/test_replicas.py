"""Fault drills with two replicas of every service (one broker): the relay's leader killed, a consumer replica
killed mid-batch and a new one joining, and every replica started at once on an empty database."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import asyncpg
import pytest

from shared.devstack import ServiceProcess
from tests.e2e.city import CityRun, assert_exact_outcome, metric, relay_holder, relay_lock_ports, run_city, until
from tests.faults.blackhole import blackhole, require_tc

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]


async def test_kill_9_of_the_relay_leader_hands_publishing_to_the_other_replica(stack, undisturbed):
    """Visits' relay leader (the replica holding the advisory lock) dies with -9 while the teachers record
    visits; the other replica takes the lock within seconds and publishes the rest, none twice or lost."""
    _calm_run, calm = undisturbed
    run = CityRun(stack, "r" + uuid.uuid4().hex[:8], replicas=2)
    await asyncio.to_thread(run.start)
    taken_over: list[float] = []
    try:
        leader = await until(lambda: relay_holder(run, "visits"), "a visits replica to hold the relay lock")
        standby = next(p for p in run.procs["visits"] if p is not leader)
        run.api_replica["visits"] = run.procs["visits"].index(standby)  # the teachers keep their replica

        async def kill_the_leader(run: CityRun) -> None:
            async def recording() -> bool:
                return await metric(standby, "http_requests_total", method="POST", route="/api/v1/visits") >= 5

            await until(recording, "teachers to record visits")
            published = await metric(leader, "events_published_total", service="visits")
            assert published > 0, "the leader must have been publishing"
            await asyncio.to_thread(run.retire, leader)
            killed_at = time.monotonic()
            await until(lambda: relay_holder(run, "visits"), "the standby to take the relay lock", timeout=60)
            taken_over.append(time.monotonic() - killed_at)

        out = await run_city(run, during_campaign=kill_the_leader)
        assert await relay_holder(run, "visits") is standby
        assert await metric(standby, "outbox_relay_leader", service="visits") == 1, "the gauge names the leader"
        assert await metric(standby, "events_published_total", service="visits") > 0
        await assert_exact_outcome(run, out, calm)
        assert taken_over[0] < 30, f"the standby took {taken_over[0]:.0f}s to take over"
        print(f"relay leader {run.label(leader)} killed: {run.label(standby)} took over in {taken_over[0]:.1f} s")
    finally:
        await run.stop()


async def test_a_relay_leader_that_vanishes_without_a_word_loses_the_lock_within_seconds(stack, undisturbed):
    """Visits' relay leader vanishes the way a host does when it loses power or its network: the process stops
    (SIGSTOP) and every packet of its lock connection is dropped (no FIN, no RST, no ACK to a keepalive probe),
    so PostgreSQL never hears that the session is gone. The lock connection's keepalive and user timeout make
    PostgreSQL end the session within seconds (without them: about two hours); the standby takes the lock and
    publishes the rest. The lost leader comes back afterwards as a standby; nothing is lost or applied twice."""
    require_tc()
    _calm_run, calm = undisturbed
    run = CityRun(stack, "b" + uuid.uuid4().hex[:8], replicas=2)
    await asyncio.to_thread(run.start)
    taken_over: list[float] = []
    try:
        leader = await until(lambda: relay_holder(run, "visits"), "a visits replica to hold the relay lock")
        standby = next(p for p in run.procs["visits"] if p is not leader)
        run.api_replica["visits"] = run.procs["visits"].index(standby)  # the teachers keep their replica

        async def the_leader_vanishes(run: CityRun) -> None:
            async def recording() -> bool:
                return await metric(standby, "http_requests_total", method="POST", route="/api/v1/visits") >= 5

            await until(recording, "teachers to record visits")
            assert await metric(leader, "events_published_total", service="visits") > 0, "the leader publishes"
            (port,) = await relay_lock_ports(run, "visits")
            pid = leader.pid()
            assert pid is not None

            # Watched on one connection opened before the blackhole: once the leader's kernel gives up on the
            # blackholed lock connection it frees that client port, and a new connection taking it would be dropped
            # too (a watch opening a connection per poll hung 60 s in its connect in one run of `make faults`).
            watch = await asyncpg.connect(run.stack.database_url)

            async def standby_holds_the_lock() -> bool:
                return await relay_holder(run, "visits", watch) is standby

            try:
                with blackhole(port):
                    os.kill(pid, signal.SIGSTOP)
                    try:
                        lost_at = time.monotonic()
                        await until(standby_holds_the_lock, "the standby to take the relay lock", timeout=60)
                        taken_over.append(time.monotonic() - lost_at)
                    finally:
                        os.kill(pid, signal.SIGCONT)
            finally:
                await watch.close()

        out = await run_city(run, during_campaign=the_leader_vanishes)
        assert taken_over, "the leader was lost during the campaign"
        assert await metric(standby, "events_published_total", service="visits") > 0
        await assert_exact_outcome(run, out, calm)
        print(f"relay leader {run.label(leader)} lost: {run.label(standby)} took over in {taken_over[0]:.1f} s")
    finally:
        await run.stop()


async def test_kill_9_of_a_consumer_replica_mid_batch_and_a_new_replica_joining(stack, undisturbed):
    """The second replicas of outreach and reporting die with -9 while they apply findings (their groups
    rebalance onto the first replicas), then a third replica of each joins (another rebalance)."""
    _calm_run, calm = undisturbed
    run = CityRun(stack, "c" + uuid.uuid4().hex[:8], replicas=2)
    await asyncio.to_thread(run.start)
    joined = []

    async def kill_mid_batch_then_join(run: CityRun) -> None:
        for name, group in (("outreach", "outreach.findings"), ("reporting", "reporting.projections")):
            victim = run.procs[name][1]

            async def applying(victim: ServiceProcess = victim, group: str = group) -> bool:
                return await metric(victim, "events_consumed_total", group=group, outcome="applied") > 0

            await until(applying, f"{run.label(victim)} to apply events")
            await asyncio.to_thread(run.retire, victim)
        for name in ("outreach", "reporting"):
            joined.append(run.label(await asyncio.to_thread(run.add_replica, name)))

    try:
        out = await run_city(run, during_campaign=kill_mid_batch_then_join)
        assert joined == ["outreach#3", "reporting#3"]
        await assert_exact_outcome(run, out, calm)
    finally:
        await run.stop()


async def test_two_replicas_of_every_service_started_at_once_on_an_empty_database(stack, undisturbed):
    """Eight processes start together on empty schemas: each service's two replicas race to create the schema
    and run the migrations; both come up, and the city runs as with one replica."""
    _calm_run, calm = undisturbed
    run = CityRun(stack, "t" + uuid.uuid4().hex[:8], replicas=2)
    try:
        await asyncio.to_thread(run.start, together=True)
        assert len(run.live()) == 8
        out = await run_city(run)
        await assert_exact_outcome(run, out, calm)
    finally:
        await run.stop()
