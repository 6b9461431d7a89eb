"""Fault drill on a three-broker KRaft cluster: the broker that leads most partitions of the campaign's topics
dies with -9 and comes back 20 s later; topics have replication factor 3 and min.insync.replicas 2, producers use
acks=all.

Just before the kill, the two other brokers stall for a few seconds (SIGSTOP: a long GC pause or a network stall
of the followers), so the leader has records its followers have not fetched when it dies. A plain kill -9 at a
random moment almost never catches such a record (followers fetch within milliseconds), and the dead broker's log
survives in the page cache, so without the stall the drill passed even with acks=1 (tried). With the stall,
acks=1 lets the leader acknowledge records alone; a follower becomes leader without them and the restarted broker
truncates its log to the new leader's: the relay has marked them published and they are lost (tried: the drill
failed, reporting counted 693 completed visits where visits holds 698). With acks=all (the kit's producer) nothing
the followers lack is ever acknowledged: the relay's confirm times out and it re-sends after the failover."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections import Counter

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from shared.devstack import StackInfo
from tests.e2e.city import CityRun, assert_exact_outcome, metric, run_city, until

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.timeout(900)]

FOLLOWERS_STALL_SECONDS = 8  # under the brokers' 30 s replica.lag.time.max.ms: they stay in the ISR


async def partition_leaders(bootstrap: str, prefix: str) -> Counter[int]:
    """How many partitions of the run's visits topics each broker leads."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix + "visits.")]
        leaders: Counter[int] = Counter()
        for topic in await admin.describe_topics(topics):
            for partition in topic["partitions"]:
                leaders[partition["leader"]] += 1
        return leaders
    finally:
        await admin.close()


async def test_kill_9_of_the_busiest_leader_after_its_followers_stall_changes_nothing(stack, undisturbed, own_cluster):
    cluster = own_cluster
    _calm_run, calm = undisturbed
    run = CityRun(
        StackInfo(stack.database_url, cluster.address),
        "m" + uuid.uuid4().hex[:8],
        extra_env={"KAFKA_TOPIC_REPLICATION_FACTOR": "3", "KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "2"},
    )
    await asyncio.to_thread(run.start)
    victim: list[int] = []

    async def kill_the_busiest_leader(run: CityRun) -> None:
        visits = run.procs["visits"][0]

        async def recording() -> bool:
            return await metric(visits, "http_requests_total", method="POST", route="/api/v1/visits") >= 1

        await until(recording, "teachers to record visits")
        leaders = await partition_leaders(cluster.address, f"e{run.run_id}.")
        node_id = leaders.most_common(1)[0][0]
        node = cluster.node(node_id)
        followers = [pid for n in cluster.nodes if n is not node and (pid := n.pid()) is not None]
        try:
            for pid in followers:
                os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(FOLLOWERS_STALL_SECONDS)  # the relay keeps sending to the leader meanwhile
            await asyncio.to_thread(node.kill)
        finally:
            for pid in followers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        victim.append(node_id)
        killed_at = time.monotonic()
        # The other two keep every partition writable (min ISR 2): leadership moves off the dead broker.
        live = ",".join(n.address for n in cluster.nodes if n is not node)

        async def moved() -> bool:
            # The admin client may still pick the dead broker for a request: that round just does not count.
            try:
                return (await partition_leaders(live, f"e{run.run_id}."))[node_id] == 0
            except KafkaError:
                return False

        await until(moved, "leadership to move off the dead broker", timeout=60)
        await asyncio.sleep(max(0.0, 20 - (time.monotonic() - killed_at)))
        await asyncio.to_thread(node.start)

    try:
        out = await run_city(run, during_campaign=kill_the_busiest_leader)
        assert victim
        await assert_exact_outcome(run, out, calm)
    finally:
        await run.stop()
