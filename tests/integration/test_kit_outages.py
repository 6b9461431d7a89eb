"""The kit under real outages: its own Kafka broker killed with -9, its own PostgreSQL crashed (-m immediate)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
from collections import defaultdict
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from shared import db
from shared.auth import issue_token
from shared.devstack import state_dir
from shared.devstack.kafka import Kafka
from shared.devstack.postgres import Postgres
from shared.events import occurred_at
from shared.outbox import add_event, add_events
from shared.testing.fixtures import free_port, serve, wait_for
from shared.web import ServiceSpec, create_app, start_runtime, stop_runtime
from tests.integration.kitapp import ItemAdded, KitSettings, app, spec

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer " + issue_token(role="school_admin", org_path="/c/d1/s1")}
PROBLEM = "application/problem+json"


def body(item_id: str, seq: int = 1) -> dict[str, object]:
    return {"item_id": item_id, "org_path": "/c/d1/s1/g1", "seq": seq}


def gauge(page: str, name: str, service: str = "kittest") -> float | None:
    """One sample of a gauge in a Prometheus text page."""
    prefix = f'{name}{{service="{service}"}} '
    for line in page.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return None


def port_pair() -> int:
    """A free port whose successor is free too (Kafka's controller listener)."""
    while True:
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


@contextlib.asynccontextmanager
async def private_kafka(unique: str) -> AsyncIterator[Kafka]:
    """A single-broker Kafka of this test's own, to kill."""
    kafka = Kafka(state_dir() / f"kafka-{unique}", port_pair())
    await asyncio.to_thread(kafka.start)
    try:
        yield kafka
    finally:
        await asyncio.to_thread(kafka.stop)
        shutil.rmtree(kafka.root.parent, ignore_errors=True)


@contextlib.asynccontextmanager
async def private_postgres(unique: str) -> AsyncIterator[Postgres]:
    """A PostgreSQL cluster of this test's own, to crash."""
    pg = Postgres(state_dir() / f"pg-{unique}", free_port())
    await asyncio.to_thread(pg.start)
    try:
        yield pg
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(pg.root.parent, ignore_errors=True)


def kill_9(kafka: Kafka) -> None:
    pid = kafka.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)


def crash(pg: Postgres) -> None:
    """`pg_ctl stop -m immediate`: every backend dies at once, crash recovery at the next start."""
    pg._run("pg_ctl", "-D", str(pg.data), "-m", "immediate", "-w", "stop")


async def test_without_kafka_the_api_stays_ready_and_the_backlog_is_reported(make_settings):
    """The fast cousin of the broker drill below (which is in `make faults`): no broker at all."""
    settings = make_settings(KitSettings, kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", outbox_gauge_seconds=0.2)
    # No declared or consumed topics: start-up itself does not wait for Kafka.
    the_spec = ServiceSpec(settings=settings, migrations=spec(settings).migrations, routers=spec(settings).routers)
    async with serve(create_app(the_spec)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        for i in range(3):
            r = await http.post("/api/v1/items", json=body(f"n{i}"), headers=ADMIN)
            assert r.status_code == 201, r.text
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}

        async def backlog_seen() -> bool:
            return gauge((await http.get("/metrics")).text, "outbox_pending_events") == 3

        await wait_for(backlog_seen, timeout=15)

        async def relay_reports_it() -> bool:
            relay = (await http.get("/healthz")).json()["relay"]
            return relay["last_error"] is not None and relay["published"] == 0

        await wait_for(relay_reports_it, timeout=15)


@pytest.mark.faults
async def test_kafka_broker_killed_apis_answer_backlog_is_true_and_drains_exactly_once_in_order(make_settings, unique):
    async with private_kafka(unique) as kafka:
        settings = make_settings(
            KitSettings,
            kafka_bootstrap_servers=kafka.address,
            topic_partitions=2,
            relay_ack_timeout_seconds=2.0,
            outbox_gauge_seconds=0.2,
        )
        conn = await asyncpg.connect(settings.database_url, server_settings={"search_path": settings.db_schema})
        the_app = app(settings)
        async with serve(the_app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            pool = the_app.state.runtime.pool

            async def write(seq: int) -> None:
                """One event for each of four keys, in its own transaction: per key, seq is the write order."""
                for i in range(4):
                    async with pool.acquire() as c, c.transaction():
                        await add_event(
                            c, ItemAdded(item_id=f"k{i}", seq=seq, org_path="/c/d", occurred_at=occurred_at())
                        )

            try:
                await write(0)
                await wait_for(lambda: conn.fetchval("SELECT count(*) = 4 FROM applied"), timeout=30)

                await asyncio.to_thread(kill_9, kafka)
                # The APIs keep answering and stay ready: they only need the database.
                for j in range(4):
                    r = await http.post("/api/v1/items", json=body(f"h{j}", j), headers=ADMIN)
                    assert r.status_code == 201, r.text
                for seq in range(1, 5):
                    await write(seq)
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text

                # The backlog gauges tell the truth while nothing can be published.
                async def backlog_seen() -> bool:
                    page = (await http.get("/metrics")).text
                    return (
                        gauge(page, "outbox_pending_events") == 20
                        and (gauge(page, "outbox_oldest_age_seconds") or 0) > 0.5
                    )

                await wait_for(backlog_seen, timeout=20)
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 20

                async def relay_reports_the_outage() -> bool:
                    relay = (await http.get("/healthz")).json()["relay"]
                    return relay["last_error"] is not None and relay["published"] == 4

                await wait_for(relay_reports_the_outage, timeout=20)
                health = await http.get("/healthz")
                assert health.status_code == 200
                assert "kittest.items" in health.json()["consumers"]

                await write(5)
                await asyncio.to_thread(kafka.start)
                await wait_for(lambda: conn.fetchval("SELECT count(*) = 28 FROM applied"), timeout=60)

                async def drained() -> bool:
                    return gauge((await http.get("/metrics")).text, "outbox_pending_events") == 0

                await wait_for(drained, timeout=20)
                await asyncio.sleep(1.0)  # let any re-sent duplicate arrive and be absorbed
                assert await conn.fetchval("SELECT count(*) FROM applied") == 28
                assert await conn.fetchval("SELECT count(*) FROM inbox") == 28
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 0
                # Per key, events were applied in the order they were written.
                by_key: dict[str, list[int]] = defaultdict(list)
                for r in await conn.fetch(
                    "SELECT item_id, seq FROM applied WHERE item_id LIKE 'k%' ORDER BY applied_at"
                ):
                    by_key[r["item_id"]].append(r["seq"])
                assert by_key == {f"k{i}": [0, 1, 2, 3, 4, 5] for i in range(4)}
            finally:
                await conn.close()


async def test_a_standby_replica_reports_the_backlog_from_the_database(make_settings, raw_conn):
    settings = make_settings(KitSettings, outbox_gauge_seconds=0.2)
    # Another replica holds the relay lock: this one never publishes, yet its gauges must be true.
    await db.migrate(settings.database_url, settings.db_schema, db.KIT_MIGRATIONS)
    await raw_conn.execute("SELECT pg_advisory_lock($1)", db.lock_key(f"relay:{settings.db_schema}"))
    try:
        async with serve(app(settings, consume=False)) as url, httpx.AsyncClient(base_url=url) as http:
            for i in range(3):
                assert (await http.post("/api/v1/items", json=body(f"s{i}"), headers=ADMIN)).status_code == 201

            async def backlog_seen() -> bool:
                return gauge((await http.get("/metrics")).text, "outbox_pending_events") == 3

            await wait_for(backlog_seen, timeout=10)
            relay = (await http.get("/healthz")).json()["relay"]
            assert relay["role"] == "standby" and relay["published"] == 0
    finally:
        await raw_conn.execute("SELECT pg_advisory_unlock_all()")


async def test_relay_lock_connection_drops_a_vanished_peer_within_seconds(make_settings):
    settings = make_settings(KitSettings)
    conn = await db.connect(settings.database_url, settings.db_schema, keepalive_seconds=10)
    try:
        # Server side: PostgreSQL probes an idle client and gives up on unacknowledged data after 10 s.
        idle, interval, count = [
            int(await conn.fetchval(f"SHOW {n}"))
            for n in ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count")
        ]
        assert idle + interval * count <= 10
        assert await conn.fetchval("SHOW tcp_user_timeout") == "10000"
        # Client side: the same on our socket.
        sock = conn._transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 10_000
    finally:
        await conn.close()


async def test_database_crash_answers_503_problem_json_on_every_path_and_recovers(make_settings, unique):
    async with private_postgres(unique) as pg:
        settings = make_settings(KitSettings, database_url=pg.address, db_acquire_timeout_seconds=1.0)
        async with serve(app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            assert (await http.post("/api/v1/items", json=body("before"), headers=ADMIN)).status_code == 201
            # One backend killed (the OOM killer's way): PostgreSQL ends every session (57P02) and recovers.
            victim = await asyncpg.connect(pg.address)
            in_flight = asyncio.create_task(http.get("/api/v1/slow", params={"seconds": 20}, headers=ADMIN))
            await asyncio.sleep(1.0)
            os.kill(await victim.fetchval("SELECT pg_backend_pid()"), signal.SIGKILL)
            r = await in_flight
            assert r.status_code == 503 and r.headers["content-type"] == PROBLEM, r.text
            victim.terminate()
            await wait_for(lambda: asyncio.to_thread(pg.answers), timeout=30)
            # A request whose query is running when the server dies.
            in_flight = asyncio.create_task(http.get("/api/v1/slow", params={"seconds": 20}, headers=ADMIN))
            await asyncio.sleep(1.0)
            await asyncio.to_thread(crash, pg)
            responses = [
                await in_flight,
                await http.post("/api/v1/items", json=body("during"), headers=ADMIN),
                await http.get("/api/v1/items/before", headers=ADMIN),
            ]
            for r in responses:
                assert r.status_code == 503, r.text
                assert r.headers["content-type"] == PROBLEM
                assert r.json()["status"] == 503 and r.headers["retry-after"] == "2"
            assert (await http.get("/readyz")).status_code == 503
            health = await http.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"

            await asyncio.to_thread(pg.start)

            async def accepted() -> bool:
                r = await http.post("/api/v1/items", json=body("after"), headers=ADMIN)
                assert r.status_code in (201, 503), r.text
                return r.status_code == 201

            await wait_for(accepted, timeout=30, interval=0.5)
            assert (await http.get("/readyz")).status_code == 200


async def test_a_request_that_gets_no_connection_in_time_is_answered_503(make_settings):
    settings = make_settings(KitSettings, db_pool_min=1, db_pool_max=1, db_acquire_timeout_seconds=0.5)
    the_app = app(settings, consume=False)
    async with serve(the_app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        async with the_app.state.runtime.pool.acquire():  # every connection busy (a stuck query, a slow disk)
            r = await http.get("/api/v1/items/x", headers=ADMIN)
        assert r.status_code == 503 and r.headers["content-type"] == PROBLEM
        assert (await http.get("/api/v1/items/x", headers=ADMIN)).status_code == 200


async def test_a_standby_takes_over_when_the_leaders_session_is_gone(make_settings, raw_conn):
    settings = make_settings(KitSettings, relay_poll_seconds=0.2)
    first = await start_runtime(spec(settings))
    second = await start_runtime(spec(settings, consume=False))
    try:
        await wait_for(lambda: first.relay.is_leader or second.relay.is_leader, timeout=10)
        leader, standby = (first, second) if first.relay.is_leader else (second, first)
        async with first.pool.acquire() as c, c.transaction():
            await add_events(
                c, [ItemAdded(item_id=f"b{i}", seq=i, org_path="/c/d", occurred_at=occurred_at()) for i in range(20)]
            )
        await wait_for(lambda: first.pool.fetchval("SELECT count(*) = 20 FROM applied"), timeout=30)

        key = db.lock_key(f"relay:{settings.db_schema}")
        holder = await raw_conn.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
            " AND classid::bigint = $1 AND objid::bigint = $2",
            (key >> 32) & 0xFFFFFFFF,
            key & 0xFFFFFFFF,
        )
        assert holder is not None
        # The leader is lost: its process stops publishing, and PostgreSQL ends its session (what the keepalive
        # does for a leader whose host vanished), which frees the relay lock.
        leader.relay.stop()
        leader.tasks[0].cancel()
        await raw_conn.execute("SELECT pg_terminate_backend($1)", holder)
        await wait_for(lambda: standby.relay.is_leader, timeout=10)

        async with first.pool.acquire() as c, c.transaction():
            await add_events(
                c, [ItemAdded(item_id=f"a{i}", seq=i, org_path="/c/d", occurred_at=occurred_at()) for i in range(20)]
            )
        await wait_for(lambda: first.pool.fetchval("SELECT count(*) = 40 FROM applied"), timeout=30)
        assert await first.pool.fetchval("SELECT count(*) FROM outbox") == 0
        assert await first.pool.fetchval("SELECT count(*) FROM inbox") == 40
    finally:
        await stop_runtime(second)
        await stop_runtime(first)
