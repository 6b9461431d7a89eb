"""Bench: reaction latency from a finding's outbox commit to its case commit, and the max sustained findings/s.

Findings are written the way the visits service writes them (a transaction every 10 ms: outbox rows plus a
commit stamp), published by the kit's real relay to the real Kafka topic, and applied by the real outreach
service in its own process (`python -m services.outreach`; `--in-process` runs it inside the bench's).
Latency per finding = outreach's last insert in the applying transaction (a lower bound of its commit,
`clock_timestamp()`) minus the visits-side commit stamp (`clock_timestamp()` as the last statement before
COMMIT), both read from the same PostgreSQL clock.

Beside the latencies it prints outreach's CPU per finding (the service process, from /proc) and the raw rates of
the same run: PostgreSQL alone (single-row commits/s) and Kafka alone (produce and consume messages/s), so runs
on a busy machine compare as ratios.

Below saturation the CPU per finding follows the batching more than the code: outreach applies a poll per lane in
one transaction, and a transaction costs about 3-4 ms of CPU whatever it holds, so the same code gives 0.6 ms per
finding at 13 findings per transaction and 1.1 ms at 5 (a slower machine makes bigger polls, hence cheaper
findings). The steady phase therefore also prints outreach's idle CPU (measured before it, per second), the
applying transactions and findings per transaction, and the statements PostgreSQL ran (pg_stat_statements, calls
per finding); compare versions at the same findings per transaction, or with `--tick 0.5` (the writer commits in
bursts of rate x tick findings, which outreach takes in polls of about that size on any machine).

    .venv/bin/python bench/outreach_reaction.py [--steady-rate 200] [--steady-seconds 20] [--tick 0.01]
        [--ramp 400,700,1000,1400,1800,2400] [--step-seconds 8] [--idle-seconds 10] [--statements 12] [--tree DIR]

A/B against an older commit: check it out elsewhere (git worktree add --detach /tmp/a REV) and pass --tree /tmp/a:
the service process runs that tree's code; this driver, its visits side and its raw rates stay the same.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
from pydantic import BaseModel

from bench.kit_throughput import raw_consume, raw_produce
from bench.procs import proc_stat, thread_cpu
from bench.visits_record import raw_rates
from services.outreach.app import build_spec
from services.outreach.settings import OutreachSettings
from shared import db, kafka
from shared.contracts.common import Category, Severity
from shared.contracts.visits import FindingRecorded
from shared.devstack import ensure_up
from shared.outbox import add_events
from shared.relay import Relay
from shared.settings import ServiceSettings
from shared.testing.fixtures import free_port
from shared.web import start_runtime, stop_runtime

SCHOOLS, CLASSES = 100, 10
QUALIFYING = [
    (Category.LEFT_BEHIND, Severity.MEDIUM),
    (Category.ORPHANED_OR_UNACCOMPANIED, Severity.HIGH),
    (Category.DISABILITY, Severity.MEDIUM),
    (Category.FAMILY_HARDSHIP, Severity.LOW),
    (Category.MENTAL_HEALTH, Severity.HIGH),
    (Category.SAFETY_RISK, Severity.URGENT),
    (Category.HEALTH_NEED, Severity.HIGH),
]


class FakeVisits(ServiceSettings):
    """The visits side of the bench: only its outbox and relay."""

    service_name: ClassVar[str] = "visits"


def path(school: int, cls: int) -> str:
    return f"/620400/62040{school % 5}/s{school:03d}/g1/c{school:03d}{cls}"


async def seed_directory(pool: asyncpg.Pool) -> None:
    """Staff of every school (class teachers, a mental-health teacher, a vice principal) in the directory copy."""
    rows: list[tuple[str, str, list[str], str | None, datetime]] = []
    now = datetime.now(UTC)
    for s in range(SCHOOLS):
        school = path(s, 0).rsplit("/", 2)[0]
        for c in range(CLASSES):
            rows.append((f"t{s}-{c}", school, ["class_teacher"], f"c{s:03d}{c}", now))
        rows.append((f"mh{s}", school, ["mental_health_teacher"], None, now))
        rows.append((f"vp{s}", school, ["vice_principal"], None, now))
    await pool.executemany(
        "INSERT INTO staff (staff_id, org_path, roles, head_class_id, occurred_at) VALUES ($1, $2, $3, $4, $5)", rows
    )


def make_finding(rng: random.Random) -> FindingRecorded:
    s, c = rng.randrange(SCHOOLS), rng.randrange(CLASSES)
    category, severity = rng.choice(QUALIFYING)
    now = datetime.now(UTC)
    return FindingRecorded(
        finding_id=str(uuid.uuid4()),
        student_id=f"stu-{rng.randrange(10_000_000)}",
        visit_id=str(uuid.uuid4()),
        campaign_id="bench",
        teacher_id=f"t{s}-{c}",
        category=category,
        severity=severity,
        org_path=path(s, c),
        visited_on=now.date(),
        recorded_at=now,
    )


async def write_at(pool: asyncpg.Pool, rate: float, seconds: float, rng: random.Random, tick: float = 0.01) -> int:
    """Write findings at `rate`/s for `seconds`, a transaction every `tick` seconds (10 ms: like visits' API handlers
    would; longer: in bursts, which outreach then applies in polls of about the same size on any machine)."""
    started = time.perf_counter()
    written = 0
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(rate * min(elapsed + tick, seconds)) - written
        if due > 0:
            findings = [make_finding(rng) for _ in range(due)]
            batch: list[BaseModel] = list(findings)
            async with pool.acquire() as conn, conn.transaction():
                await add_events(conn, batch)
                await conn.executemany(
                    "INSERT INTO finding_commits (finding_id, committed_at) VALUES ($1, clock_timestamp())",
                    [(f.finding_id,) for f in findings],
                )
            written += due
        await asyncio.sleep(max(0.0, started + elapsed + tick - time.perf_counter()))
    return written


LATENCY = """
WITH applied AS (
    SELECT finding_id, max(applied_at) OVER (PARTITION BY xmin::text) AS case_commit FROM {o}.case_findings
)
SELECT extract(epoch FROM a.case_commit - w.committed_at) * 1000 AS ms,
       extract(epoch FROM p.published_at - w.committed_at) * 1000 AS relay_ms,
       extract(epoch FROM i.processed_at - w.committed_at) * 1000 AS start_ms
  FROM {v}.finding_commits w JOIN applied a USING (finding_id)
  JOIN {v}.finding_publishes p USING (finding_id)
  LEFT JOIN {o}.inbox i ON i.event_id = p.event_id
 WHERE w.committed_at >= $1 AND w.committed_at < $2
"""


BATCHES = """
SELECT count(DISTINCT xmin::text) FROM {o}.case_findings WHERE applied_at >= $1
"""


async def report_batches(conn: asyncpg.Connection, o: str, since: datetime, written: int, a_top: int) -> None:
    """How the steady findings were applied: transactions (findings per transaction), and the statements the database
    ran meanwhile, longest first, per finding: calls, rows and execution time (pg_stat_statements, reset at the start
    of the steady phase: both sides and the bench's polls)."""
    txns = await conn.fetchval(BATCHES.format(o=o), since)
    print(f"steady: {txns} applying transactions, {written / max(1, txns):.1f} findings per transaction", flush=True)
    rows = await conn.fetch(
        "SELECT calls, rows, total_exec_time AS ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS q"
        " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1",
        a_top,
    )
    total = await conn.fetchval("SELECT sum(total_exec_time) FROM pg_stat_statements")
    print(f"  statements' execution time: {total / written:.3f} ms per finding; the longest, per finding:", flush=True)
    for r in rows:
        calls, n, ms = r["calls"] / written, r["rows"] / written, r["ms"] / written
        print(f"  {calls:7.3f} calls {n:7.3f} rows {ms:7.4f} ms  {r['q']}", flush=True)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


async def measure(
    conn: asyncpg.Connection, o: str, v: str, since: datetime, until: datetime
) -> tuple[list[float], list[float]]:
    """Per finding: outbox commit → case commit, and outbox commit → Kafka ack of the visits relay (ms)."""
    ms, relay_ms, _ = await measure_parts(conn, o, v, since, until)
    return ms, relay_ms


async def measure_parts(
    conn: asyncpg.Connection, o: str, v: str, since: datetime, until: datetime
) -> tuple[list[float], list[float], list[float]]:
    """As `measure`, and outbox commit → the start of outreach's applying transaction (its inbox row's `now()`)."""
    rows = await conn.fetch(LATENCY.format(o=o, v=v), since, until)
    return (
        [float(r["ms"]) for r in rows],
        [float(r["relay_ms"]) for r in rows],
        [float(r["start_ms"]) for r in rows if r["start_ms"] is not None],
    )


async def drain(conn: asyncpg.Connection, o: str, expected: int, timeout: float = 120) -> float:
    """Seconds until outreach applied `expected` findings in all."""
    t0 = time.perf_counter()
    while await conn.fetchval(f"SELECT count(*) FROM {o}.case_findings") < expected:
        if time.perf_counter() - t0 > timeout:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - t0


async def raw_kafka(bootstrap: str, tag: str, n: int = 20_000) -> tuple[float, float]:
    """Kafka alone, now: messages/s produced (1 KiB, acks=all) and consumed on a 6-partition topic of this run."""
    topic = f"bench{tag}.raw"
    await kafka.ensure_topics(bootstrap, [kafka.TopicSpec(topic, 6)])
    return await raw_produce(bootstrap, topic, n), await raw_consume(bootstrap, topic, n)


def cpu_of(service: asyncio.subprocess.Process | None) -> float:
    """CPU seconds of the service process so far (the bench's own when it runs in-process)."""
    return proc_stat(service.pid)[1] if service is not None else time.process_time()


async def main(a: argparse.Namespace) -> None:
    stack = ensure_up()
    tag = uuid.uuid4().hex[:8]
    raw_commits, _ = await raw_rates(stack.database_url, argparse.Namespace(clients=4, batch=100, uploaders=1), 3.0)
    produced, consumed = await raw_kafka(stack.kafka_bootstrap, tag)
    print(
        f"raw now: PostgreSQL {raw_commits:,.0f} single-row commits/s (4 connections); Kafka {produced:,.0f} msg/s"
        f" produced, {consumed:,.0f} msg/s consumed",
        flush=True,
    )
    common: dict[str, Any] = {
        "env": "test",
        "database_url": stack.database_url,
        "kafka_bootstrap_servers": stack.kafka_bootstrap,
        "topic_prefix": f"bench{tag}.",
        "topic_partitions": 6,
        "relay_poll_seconds": 0.5,
    }
    o_schema, v_schema = f"bench_{tag}_outreach", f"bench_{tag}_visits"
    outreach = OutreachSettings(db_schema=o_schema, scheduler_enabled=False, http_port=0, **common)
    visits = FakeVisits(db_schema=v_schema, **common)

    vpool = await db.create_pool(visits.database_url, v_schema, min_size=2, max_size=4)
    await db.migrate(visits.database_url, v_schema, db.KIT_MIGRATIONS)
    await vpool.execute("CREATE TABLE finding_commits (finding_id text PRIMARY KEY, committed_at timestamptz)")
    # The relay deletes what Kafka acknowledged: the bench stamps each finding's deletion (its ack) beside its commit.
    await vpool.execute(
        """
        CREATE TABLE finding_publishes (finding_id text PRIMARY KEY, event_id uuid, published_at timestamptz);
        CREATE FUNCTION stamp_publish() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO finding_publishes
            SELECT envelope -> 'data' ->> 'finding_id', event_id, clock_timestamp() FROM gone
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$;
        CREATE TRIGGER stamp_publish AFTER DELETE ON outbox REFERENCING OLD TABLE AS gone
            FOR EACH STATEMENT EXECUTE FUNCTION stamp_publish();
        """
    )
    service: asyncio.subprocess.Process | None = None
    runtime = None
    if a.in_process:
        runtime = await start_runtime(build_spec(outreach))
    else:
        # The service in its own process, as deployed (the bench's writer and the visits relay run here).
        env = {
            **os.environ,
            "OUTREACH_ENV": "test",
            "OUTREACH_DATABASE_URL": stack.database_url,
            "OUTREACH_KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
            "OUTREACH_DB_SCHEMA": o_schema,
            "OUTREACH_TOPIC_PREFIX": common["topic_prefix"],
            "OUTREACH_TOPIC_PARTITIONS": "6",
            "OUTREACH_SCHEDULER_ENABLED": "false",
            "OUTREACH_HTTP_PORT": str(free_port()),
            "LOG_LEVEL": "WARNING",
        }
        env["PYTHONPATH"] = a.tree
        service = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.outreach", env=env, cwd=a.tree)
    # The service is ready once its last migration (004, closure approvals) has run.
    conn = await asyncpg.connect(stack.database_url)
    for _ in range(600):
        if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{o_schema}.case_closure_proposals"):
            break
        await asyncio.sleep(0.1)
    opool = await db.create_pool(stack.database_url, o_schema, min_size=1, max_size=2)
    await seed_directory(opool)
    await opool.close()
    relay = Relay(visits)
    relay_task = asyncio.create_task(relay.run())
    rng = random.Random(7)
    total = 0
    try:
        # Warm-up: topics, consumer group assignment, connection pools.
        total += await write_at(vpool, 50, 3, rng)
        await drain(conn, o_schema, total)
        await asyncio.sleep(1)
        # Idle: what the service spends per second with nothing to do (its pollers, relay, consumers' fetches).
        cpu_idle = cpu_of(service)
        await asyncio.sleep(a.idle_seconds)
        idle = (cpu_of(service) - cpu_idle) / a.idle_seconds
        print(f"outreach CPU idle: {idle * 1e3:.1f} ms per second ({a.idle_seconds:.0f} s)", flush=True)
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")

        print(f"steady {a.steady_rate}/s for {a.steady_seconds}s, a transaction every {a.tick}s ...", flush=True)
        since = await conn.fetchval("SELECT clock_timestamp()")
        cpu0, first = cpu_of(service), total
        threads0 = thread_cpu(service.pid) if service is not None else {}
        written = await write_at(vpool, a.steady_rate, a.steady_seconds, rng, a.tick)
        total += written
        until = await conn.fetchval("SELECT clock_timestamp()")
        await drain(conn, o_schema, total)
        steady_cpu = cpu_of(service) - cpu0
        threads = thread_cpu(service.pid) if service is not None else {}
        steady_wall = (until - since).total_seconds()
        print(
            f"outreach CPU (steady): {steady_cpu:.2f} s for {written} findings = {steady_cpu / written * 1e3:.2f} ms"
            f" per finding; less its idle CPU over the window: {(steady_cpu - idle * steady_wall) / written * 1e3:.2f}"
            " ms per finding",
            flush=True,
        )
        if service is not None:
            # The main thread runs the consumers (the reaction's transactions); the busiest other one is the relay's.
            by_thread = sorted(((t - threads0.get(tid, 0.0), tid) for tid, t in threads.items()), reverse=True)
            print(
                "outreach CPU by thread (steady), ms per finding: "
                + ", ".join(
                    f"{'main' if tid == service.pid else tid} {t / written * 1e3:.3f}" for t, tid in by_thread[:4]
                ),
                flush=True,
            )
        await report_batches(conn, o_schema, since, written, a.statements)
        ms, relay_ms, start_ms = await measure_parts(conn, o_schema, v_schema, since, until)  # after the statements
        print(
            f"steady: {len(ms)} findings at {a.steady_rate}/s  latency p50 {pct(ms, 50):.0f} ms  "
            f"p90 {pct(ms, 90):.0f} ms  p99 {pct(ms, 99):.0f} ms  max {max(ms):.0f} ms"
            f"  (of which visits relay to Kafka ack: p50 {pct(relay_ms, 50):.0f} ms, p99 {pct(relay_ms, 99):.0f} ms)",
            flush=True,
        )
        # Where the time goes: the relay's ack is stamped when its rows are deleted (an upper bound), the applying
        # transaction's start is its inbox rows' now(), its end the last case_findings row (a lower bound).
        parts = [pct(v, q) for v in (relay_ms, start_ms, ms) for q in (50, 99)]
        print(
            "steady latency by step, p50/p99 ms: commit → Kafka ack {:.0f}/{:.0f}, → outreach transaction start"
            " {:.0f}/{:.0f}, → case written {:.0f}/{:.0f}".format(*parts),
            flush=True,
        )

        best = 0.0
        for rate in a.ramp:
            since = await conn.fetchval("SELECT clock_timestamp()")
            t0 = time.perf_counter()
            written = await write_at(vpool, rate, a.step_seconds, rng)
            offered = written / (time.perf_counter() - t0)
            total += written
            until = await conn.fetchval("SELECT clock_timestamp()")
            tail = await drain(conn, o_schema, total)
            ms, relay_ms = await measure(conn, o_schema, v_schema, since, until)
            applied = len(ms) / (a.step_seconds + tail)
            # Kept up = the backlog left when writing stopped drains within a second and latency stays flat.
            kept_up = tail < 1.0 and pct(ms, 99) < 1000
            print(
                f"ramp {rate:>5}/s: offered {offered:7.0f}/s  drained {tail:5.2f}s after  applied {applied:7.0f}/s  "
                f"p50 {pct(ms, 50):6.0f} ms  p99 {pct(ms, 99):6.0f} ms  (relay p99 {pct(relay_ms, 99):5.0f} ms)  "
                f"{'kept up' if kept_up else 'LAG GROWS'}",
                flush=True,
            )
            if kept_up:
                best = max(best, offered)
            else:
                break
        all_cpu = cpu_of(service) - cpu0
        print(
            f"outreach CPU (steady and ramp): {all_cpu:.2f} s for {total - first} findings ="
            f" {all_cpu / (total - first) * 1e3:.2f} ms per finding",
            flush=True,
        )
        cases = await conn.fetchval(f"SELECT count(*) FROM {o_schema}.cases")
        dup = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT student_id FROM {o_schema}.cases WHERE state <> 'closed'"
            " GROUP BY student_id HAVING count(*) > 1) d"
        )
        print(f"max sustained: {best:.0f} findings/s  ({total} findings, {cases} cases, {dup} duplicate open cases)")
    finally:
        relay.stop()
        relay_task.cancel()
        if runtime is not None:
            await stop_runtime(runtime)
        if service is not None:
            service.terminate()
            await service.wait()
        await vpool.close()
        if not a.keep:
            await conn.execute(f"DROP SCHEMA {o_schema} CASCADE")
            await conn.execute(f"DROP SCHEMA {v_schema} CASCADE")
        await conn.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steady-rate", type=float, default=200)
    p.add_argument("--steady-seconds", type=float, default=20)
    p.add_argument(
        "--ramp", type=lambda s: [float(x) for x in s.split(",")], default=[400, 700, 1000, 1400, 1800, 2400]
    )
    p.add_argument("--step-seconds", type=float, default=8)
    p.add_argument(
        "--tick", type=float, default=0.01, help="steady phase: seconds between the writer's transactions (bursts)"
    )
    p.add_argument("--statements", type=int, default=12, help="print this many statements, longest first")
    p.add_argument("--idle-seconds", type=float, default=10, help="measure the service's idle CPU this long")
    p.add_argument("--keep", action="store_true", help="keep the bench schemas for inspection")
    p.add_argument("--in-process", action="store_true", help="run the service inside the bench process")
    p.add_argument("--tree", default=None, help="run the outreach service from this checkout (A/B runs)")
    parsed = p.parse_args()
    parsed.tree = str(Path(parsed.tree or Path(__file__).parent.parent).resolve())
    asyncio.run(main(parsed))
