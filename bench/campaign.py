"""The whole city's home-visit campaign end to end through the four service processes, with raw rates for ratios.

Starts the four services as separate processes (own schemas and topic prefix, logs in .devstack/bench-campaign-*),
imports a generated city through the committees API, launches a campaign and records every visit through the
visits API with concurrent simulated teachers (a share record each visit as it happens with `POST /visits`, the
rest upload their offline visits in one `POST /visits/batch` each, all with their own teacher tokens), then waits
until outreach has opened every case and reporting shows every visit and case. Prints visits/s accepted, the wall
time from the first visit until both caught up, finding→case latency p50/p99, each service's peak memory, the CPU
of every process in the window (PostgreSQL's also split by what its processes served: each service's backends, the
autovacuum of each database, the server's own), and the raw PostgreSQL COPY and Kafka produce rates of the same
run. Drops its schemas and topics afterwards (unless --keep).

With --staged, each part of the campaign path runs alone on the machine: outreach and reporting are stopped once the
launch's events are consumed, visits takes the whole campaign (its accepted rate and the CPU of visits, PostgreSQL and
Kafka), then outreach is started again and catches up on the campaign's findings, then reporting on its events
(each one's rate and CPU). What a deployment with each service and its database on its own machine would give.
Run: .venv/bin/python bench/campaign.py [--scale 1.0] [--single-share 0.25] [--clients 96] [--max-wait 1200] [--keep]
     [--staged] [--visits-replicas 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.kit_throughput import raw_produce
from bench.procs import children_cpu, proc_stat, tree_cpu
from bench.verdicts import pct
from demo import citygen, recorder
from demo.__main__ import import_city, launch_campaign
from demo.activity import visit_record
from demo.client import CITY, Api, bureau_token, metric_sum, settled
from shared import kafka, outbox
from shared.db import service_database_url
from shared.devstack import ServiceProcess, StackInfo, ensure_up, state_dir
from shared.devstack.services import SERVICES
from shared.devstack.stack import components
from shared.testing.fixtures import drop_test_resources, free_port, records_to_end
from tests.e2e.city import expected_outcomes

# Issue 16, the whole city: ≥ 1,500 visits/s accepted, ≤ 150 s from the first visit until outreach and reporting
# caught up (prorated by --scale), finding → case p99 ≤ 100 ms during the campaign, accepted ≥ 0.04 × raw COPY.
TARGET_SECONDS, TARGET_RATE, TARGET_P99_MS, TARGET_COPY_RATIO = 150, 1_500, 100, 0.04


def start_services(stack: StackInfo, run: str, visits_replicas: int = 1) -> dict[str, ServiceProcess]:
    """The four services as processes with this run's schemas, topic prefix and free ports (like the e2e CityRun);
    visits' replicas after the first are `visits#2`, ... (one relay publishes at a time, as deployed)."""
    urls = {name: f"http://127.0.0.1:{free_port()}" for name in SERVICES}
    env = {
        **stack.env(),
        "HSS_TOPIC_PREFIX": f"bc{run}.",
        "LOG_LEVEL": "WARNING",
        **{f"REPORTING_{n.upper()}_URL": urls[n] for n in SERVICES if n != "reporting"},
        **{f"{n.upper()}_DB_SCHEMA": f"bc_{run}_{n}" for n in SERVICES},
    }
    procs = {
        n: ServiceProcess(
            state_dir() / f"bench-campaign-{run}",
            n,
            int(u.rsplit(":", 1)[1]),
            {**env, "LOG_LEVEL": "INFO"} if n == "reporting" else env,  # its full-refresh timings
        )
        for n, u in urls.items()
    }
    for k in range(2, visits_replicas + 1):
        procs[f"visits#{k}"] = ServiceProcess(
            state_dir() / f"bench-campaign-{run}", "visits", free_port(), env, replica=k
        )
    for p in procs.values():
        p.start()
    return procs


def visits_addresses(procs: dict[str, ServiceProcess]) -> list[str]:
    """Every visits replica's address (the simulated teachers' connections spread over them)."""
    return [p.address for p in procs.values() if p.name == "visits"]


def vm_hwm(pid: int) -> int:
    """Peak resident set (kB) of a process since it started."""
    return next(
        int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmHWM:")
    )


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


async def sample_rss(pids: dict[str, int], peak: dict[str, int], stop: asyncio.Event) -> None:
    """Poll each service's VmRSS every 0.5 s and keep the maximum."""
    while not stop.is_set():
        for name, pid in pids.items():
            with contextlib.suppress(OSError, StopIteration):  # a process that has exited
                peak[name] = max(peak.get(name, 0), proc_stat(pid)[0])
        await asyncio.sleep(0.5)


async def sample_pg_cpu(
    dsn: str, postmaster: int, served: dict[str, str], spent: dict[str, float], stop: asyncio.Event
) -> None:
    """Every second: the CPU each of PostgreSQL's processes spent since the last poll, added to what it serves: a
    service's backends (by application name, the service's schema: `served`), autovacuum in a service's database,
    the bench's own sessions, or the server's own processes (writer, checkpointer, WAL writer...). A process that
    exits between two polls keeps what the last poll saw (the total of `tree_cpu` has the rest)."""
    cluster = await asyncpg.connect(dsn)  # its own session: the bench's others are busy with their own queries
    try:
        await _poll_pg_cpu(cluster, postmaster, served, spent, stop)
    finally:
        await cluster.close()


async def _poll_pg_cpu(
    cluster: asyncpg.Connection, postmaster: int, served: dict[str, str], spent: dict[str, float], stop: asyncio.Event
) -> None:
    seen: dict[int, float] = {}
    first = True  # the first poll only notes where each process stands
    while True:
        who = {
            r["pid"]: (r["application_name"] or "", r["backend_type"] or "", r["datname"] or "")
            for r in await cluster.fetch("SELECT pid, application_name, backend_type, datname FROM pg_stat_activity")
        }
        for pid, cpu in children_cpu(postmaster).items():
            app, kind, database = who.get(pid, ("", "", ""))
            if kind == "client backend":
                label = served.get(app, "the bench's sessions")
            elif kind == "autovacuum worker":
                label = f"autovacuum in {database}"
            else:
                label = "server processes"
            before = seen.get(pid, 0.0)
            if not first:  # a process new since the last poll (or on a reused pid) started in the window
                spent[label] = spent.get(label, 0.0) + (cpu - before if cpu >= before else cpu)
            seen[pid] = cpu
        first = False
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


async def sample_backlog(dsn: str, schema: str, series: list[tuple[float, int]], stop: asyncio.Event) -> None:
    """Every second: the visits relay's backlog (committed outbox rows not yet published to Kafka), read the way the
    service's own gauge reads it (`outbox.backlog`: the waiting ids' two ends, counted through the index). A
    `count(*)` walked the queue's dead rows as well: 25 ms a read, 4.4-5.9 s of PostgreSQL's CPU in a full-city
    campaign window, charged to the system under test."""
    conn = await asyncpg.connect(dsn, server_settings={"search_path": f'"{schema}"'})
    try:
        while not stop.is_set():
            n, _ = await outbox.backlog(conn)
            series.append((time.monotonic(), n))
            await asyncio.sleep(1.0)
    finally:
        await conn.close()


async def topic_messages(bootstrap: str, prefix: str) -> int:
    """Messages on all of the run's topics (sum of end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        cluster = await consumer._client.fetch_all_metadata()
        tps = [
            TopicPartition(t, p)
            for t in cluster.topics()
            if t.startswith(prefix)
            for p in cluster.partitions_for_topic(t) or ()
        ]
        return int(sum((await consumer.end_offsets(tps)).values())) if tps else 0
    finally:
        await consumer.stop()


def consumed(proc: ServiceProcess) -> tuple[float, float]:
    """(events applied, seconds spent in handlers) of a service's consumers so far, from its /metrics."""
    page = proc.get("/metrics") or ""
    applied = sum(
        float(ln.rsplit(" ", 1)[1])
        for ln in page.splitlines()
        if ln.startswith("events_consumed_total{") and 'outcome="applied"' in ln
    )
    return applied, metric_sum(page, "event_handler_duration_seconds_sum")


def visit_jobs(
    rng: random.Random, assignments: list[dict[str, Any]], checklist: list[str], starts_on: Any, single_share: float
) -> tuple[list[dict[str, Any]], list[recorder.Job], list[str], set[str]]:
    """Every assignment's visit record, and the requests that send them (`demo.recorder`'s, as the demo's teachers
    send theirs): a `single_share` of the teachers record visit by visit, the rest upload their offline visits in one
    batch each, interleaved over the whole campaign. Also returns the teachers and the live ones."""
    records = [visit_record(rng, a, checklist, starts_on, 30) for a in assignments]
    by_teacher: dict[str, list[dict[str, Any]]] = {}
    for a, r in zip(assignments, records, strict=True):
        by_teacher.setdefault(a["teacher_id"], []).append(r)
    teachers = list(by_teacher)
    rng.shuffle(teachers)
    live = set(teachers[: round(len(teachers) * single_share)])
    return records, recorder.teacher_jobs(by_teacher, live, rng), teachers, live


async def caught_up(
    outreach_db: asyncpg.Connection,
    reporting_db: asyncpg.Connection,
    reporting: Api,
    rep: ServiceProcess,
    rep_schema: str,
    cid: str,
    want: tuple[int, int],
    wait: float,
) -> tuple[float, float, float]:
    """When outreach had every case, reporting showed every visit and case, and its lag was 0 (0: not within wait)."""
    visits, cases = want
    t_out = t_rep = t_lag = 0.0
    started = last_note = time.monotonic()
    while not (t_out and t_rep) and time.monotonic() - started < wait:
        n_cases = await outreach_db.fetchval("SELECT count(*) FROM cases")
        if not t_out and n_cases >= cases:
            t_out = time.monotonic()
        lag = await asyncio.to_thread(rep.consumer_lag)
        if t_out and not t_lag and lag == 0:
            t_lag = time.monotonic()
        f = (await reporting.get("/children", org_path=CITY, campaign_id=cid))["self"]["figures"]
        seen = f["visits"]["completed"] + f["visits"]["missed"]
        if not t_rep and seen >= visits and f["cases"]["opened"] >= cases:
            t_rep = time.monotonic()
        if time.monotonic() - last_note >= 30:
            last_note = time.monotonic()
            facts = await reporting_db.fetchval(f"SELECT count(*) FROM {rep_schema}.cases")
            print(
                f"  +{last_note - started:4.0f}s after the last answer: outreach {n_cases:,}/{cases:,} cases, "
                f"reporting {seen:,}/{visits:,} visits, {f['cases']['opened']:,} cases (facts: {facts:,}), lag {lag}",
                flush=True,
            )
        await asyncio.sleep(0.25)
    return t_out, t_rep, t_lag


async def appended_at(bootstrap: str, topic: str) -> dict[str, float]:
    """When each finding reached Kafka (finding id → the record's timestamp, set by visits' relay as it sent it)."""
    out: dict[str, float] = {}
    async for r in records_to_end(bootstrap, lambda t: t == topic):
        out[orjson.loads(r.value or b"{}").get("subject", "")] = r.timestamp / 1000
    return out


# Stamps each finding's outbox insert in visits (the group's transaction's last write, near its commit): it splits
# recording → the relay's send into visits' transaction and the relay's wait. A statement trigger: one insert per
# group transaction, as the bench's role (visits' own may not write the bench's table).
PROBE = """
CREATE TABLE {v}.bench_finding_inserts (finding_id text, inserted_at timestamptz);
CREATE FUNCTION {v}.bench_stamp_findings() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    INSERT INTO {v}.bench_finding_inserts
    SELECT subject, clock_timestamp() FROM (SELECT envelope ->> 'subject' AS subject, type FROM added) a
     WHERE type = 'visits.finding.recorded.v1';
    RETURN NULL;
END $$;
CREATE TRIGGER bench_stamp_findings AFTER INSERT ON {v}.outbox REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION {v}.bench_stamp_findings();
"""


async def inserted_at(conn: asyncpg.Connection, visits_schema: str) -> dict[str, float]:
    """When each finding's outbox row was inserted in visits (finding id → epoch seconds)."""
    rows = await conn.fetch(
        f"SELECT finding_id, extract(epoch FROM inserted_at)::float8 AS at FROM {visits_schema}.bench_finding_inserts"
    )
    return {r["finding_id"]: r["at"] for r in rows}


def hops(cases: list[asyncpg.Record], sent: dict[str, float], inserted: dict[str, float]) -> str:
    """finding → case split at Kafka: visits' commit to the relay's send, the send to outreach's case (p50/p99);
    the first split again at the finding's outbox insert: visits' transaction, then the relay's wait."""
    relay = [1000 * (sent[r["finding_id"]] - r["recorded"]) for r in cases if r["finding_id"] in sent]
    react = [1000 * (r["committed"] - sent[r["finding_id"]]) for r in cases if r["finding_id"] in sent]
    both = [r for r in cases if r["finding_id"] in sent and r["finding_id"] in inserted]
    txn = [1000 * (inserted[r["finding_id"]] - r["recorded"]) for r in both]
    wait = [1000 * (sent[r["finding_id"]] - inserted[r["finding_id"]]) for r in both]
    return (
        f"  of which visits' recording → the relay's send p50/p99 {pct(relay, 0.5):.0f}/{pct(relay, 0.99):.0f} ms, "
        f"send → outreach's case p50/p99 {pct(react, 0.5):.0f}/{pct(react, 0.99):.0f} ms ({len(relay):,} cases)\n"
        f"  visits' recording → its outbox insert (the group's transaction) p50/p99 {pct(txn, 0.5):.0f}/"
        f"{pct(txn, 0.99):.0f} ms, the insert → the relay's send p50/p99 {pct(wait, 0.5):.0f}/{pct(wait, 0.99):.0f} ms"
    )


async def statement_stats(conn: asyncpg.Connection, *, reset: bool = False) -> list[str]:
    """The statements that took the database longest (pg_stat_statements, when the server preloads it)."""
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public")
        if reset:
            await conn.execute("SELECT public.pg_stat_statements_reset()")
            return []
        rows = await conn.fetch(
            "SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g') AS query"
            " FROM public.pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12"
        )
    except asyncpg.PostgresError as exc:
        return [f"  (no statement statistics: {exc})"]
    return ["  database time by statement (pg_stat_statements, all sessions):"] + [
        f"    {r['total_exec_time'] / 1000:6.1f}s {r['calls']:>8,} calls {r['rows']:>9,} rows  {r['query'][:110]}"
        for r in rows
    ]


async def wal_counters(conn: asyncpg.Connection) -> tuple[int, int, int, int]:
    """The cluster's WAL written so far: (records, full-page images, bytes, checkpoints) from pg_stat_wal and
    pg_stat_bgwriter. Full-page images are what an index with random keys costs after every checkpoint."""
    r = await conn.fetchrow(
        "SELECT w.wal_records, w.wal_fpi, w.wal_bytes::bigint, b.checkpoints_timed + b.checkpoints_req AS checkpoints"
        " FROM pg_stat_wal w, pg_stat_bgwriter b"
    )
    return int(r[0]), int(r[1]), int(r[2]), int(r[3])


async def raw_copy(stack: StackInfo, visits_schema: str, scratch: str) -> tuple[int, float]:
    """COPY the campaign's visit rows (fetched beforehand) into a like-for-like scratch table in visits' database;
    rows and rows/s."""
    conn = await asyncpg.connect(service_database_url(stack.database_url, "visits"))
    try:
        rows = await conn.fetch(f"SELECT * FROM {visits_schema}.visits")
        await conn.execute(
            f"CREATE SCHEMA {scratch}; CREATE TABLE {scratch}.visits (LIKE {visits_schema}.visits INCLUDING ALL)"
        )
        columns = list(rows[0].keys())
        started = time.perf_counter()
        for i in range(0, len(rows), 10_000):
            await conn.copy_records_to_table(
                "visits", schema_name=scratch, records=rows[i : i + 10_000], columns=columns
            )
        return len(rows), len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


def ok(good: bool) -> str:
    """A target's verdict."""
    return "ok" if good else "MISSED"


async def assignment_updates(conn: asyncpg.Connection, schema: str) -> tuple[int, int]:
    """Row updates of visits' assignments so far, and how many of them were HOT."""
    row = await conn.fetchrow(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'assignments'",
        schema,
    )
    return (int(row[0]), int(row[1])) if row else (0, 0)


def cpu_now(services: dict[str, int], infra: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each service process and of the infrastructure's (PostgreSQL's and Kafka's with their
    children); pid 0 (not running, or external): left out."""
    return {n: proc_stat(p)[1] for n, p in services.items() if p} | {n: tree_cpu(p) for n, p in infra.items() if p}


def phase_line(
    name: str, seconds: float, n: int, unit: str, visits: int, cpu: dict[str, float], busy: tuple[int, int]
) -> str:
    """One stage of --staged: its wall time, rate, CPU per visit of each process that ran in it and how busy the
    machine was (`busy`: `machine_busy()` at its start)."""
    now = machine_busy()
    share = 100 * (now[0] - busy[0]) / max(1, now[1] - busy[1])
    per_visit = ", ".join(f"{k} {1000 * v / visits:.2f}" for k, v in cpu.items())
    total = 1000 * sum(cpu.values()) / visits
    rate = f"{n / seconds:7,.0f} {unit}/s = " if unit != "visits" else ""
    cost = f"CPU ms per visit {total:.2f} ({per_visit})"
    return f"  {name:<9} {seconds:6.1f}s  {rate}{visits / seconds:6,.0f} visits/s; {cost}; machine {share:.0f}% busy"


async def wait_for(check: Callable[[], Awaitable[bool]], wait: float, what: str) -> None:
    """Poll `check()` every 0.25 s until it holds, at most `wait` seconds."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > wait:
            raise TimeoutError(f"{what}: not within {wait:.0f}s")
        await asyncio.sleep(0.25)


async def staged(
    procs: dict[str, ServiceProcess],
    infra: dict[str, int],
    jobs: list[recorder.Job],
    args: argparse.Namespace,
    cid: str,
    want_cases: int,
    outreach_db: asyncpg.Connection,
    reporting: Api,
) -> tuple[list[str], float]:
    """--staged: visits alone takes the campaign, then outreach alone and reporting alone catch up on it (the
    lines to print, and the visits/s visits accepted alone)."""
    for n in ("outreach", "reporting"):
        await asyncio.to_thread(procs[n].stop)
    wait = args.max_wait * max(1.0, args.scale)
    pids = {n: p.pid() or 0 for n, p in procs.items() if p.name == "visits"}
    cpu0, t0, busy0 = cpu_now(pids, infra), time.monotonic(), machine_busy()
    rec = await recorder.record(visits_addresses(procs), jobs, args.clients, campaign_id=cid)
    visits = rec.stored
    lines = [
        f"\nscale {args.scale}, staged: {visits:,} visits stored, {rec.rejected} rejected, {len(rec.failed)} failed",
        phase_line(
            "visits",
            rec.last - rec.first,
            visits,
            "visits",
            visits,
            {n: v - cpu0[n] for n, v in cpu_now(pids, infra).items()},
            busy0,
        ),
    ]
    print(f"  visits alone: {time.monotonic() - t0:.0f}s", flush=True)

    async def outreach_done() -> bool:
        return bool(await outreach_db.fetchval("SELECT count(*) FROM cases") >= want_cases) and (
            await asyncio.to_thread(procs["outreach"].consumer_lag) == 0
        )

    async def reporting_done() -> bool:
        f = (await reporting.get("/children", org_path=CITY, campaign_id=cid))["self"]["figures"]
        seen = f["visits"]["completed"] + f["visits"]["missed"]
        lag = await asyncio.to_thread(procs["reporting"].consumer_lag)
        return bool(seen >= visits and f["cases"]["opened"] >= want_cases and lag == 0)

    for name, done in (("outreach", outreach_done), ("reporting", reporting_done)):
        await asyncio.to_thread(procs[name].start)  # returns once it answers /readyz
        pids = {name: procs[name].pid() or 0}
        applied0 = consumed(procs[name])[0]
        cpu0, t0, busy0 = cpu_now(pids, infra), time.monotonic(), machine_busy()
        await wait_for(done, wait, f"{name} caught up")
        seconds = time.monotonic() - t0
        applied = consumed(procs[name])[0] - applied0
        cpu = {n: v - cpu0[n] for n, v in cpu_now(pids, infra).items()}
        lines.append(phase_line(name, seconds, int(applied), "events", visits, cpu, busy0))
        print(f"  {name} alone: {seconds:.0f}s", flush=True)
    return lines, visits / (rec.last - rec.first)


async def main(args: argparse.Namespace) -> None:
    load_start = os.getloadavg()
    grow = max(1.0, args.scale)  # waits that scale with the city (directory, launch, catch-up)
    stack = ensure_up()
    run = uuid.uuid4().hex[:8]
    prefix, schemas = f"bc{run}.", {n: f"bc_{run}_{n}" for n in SERVICES}
    scratch = f"bc_{run}_raw"
    t0 = time.monotonic()
    procs = await asyncio.to_thread(start_services, stack, run, args.visits_replicas)
    pids = {n: p.pid() or 0 for n, p in procs.items()}
    logs = state_dir() / f"bench-campaign-{run}" / "logs"
    print(f"run {run}: services up in {time.monotonic() - t0:.0f}s, logs in {logs}")
    token = bureau_token()
    # The city's upload (~112 MiB per scale unit) and the launch answer only when done: no 120 s cap at scale 2.
    committees = Api(procs["committees"].address, token, repeatable=True, timeout=600 * grow)
    visits, reporting = Api(procs["visits"].address, token, timeout=600 * grow), Api(procs["reporting"].address, token)
    # Each service process runs in its own database (devstack, as deployed); pg_stat_statements is the cluster's.
    dbs = {n: service_database_url(stack.database_url, n) for n in SERVICES}
    outreach_db = await asyncpg.connect(dbs["outreach"], server_settings={"search_path": schemas["outreach"]})
    visits_db, reporting_db, cluster_db = (
        await asyncpg.connect(dbs["visits"]),
        await asyncpg.connect(dbs["reporting"]),
        await asyncpg.connect(stack.database_url),
    )
    rng = random.Random(args.seed)
    try:
        city = citygen.generate(scale=args.scale, seed=args.seed)
        t = time.monotonic()
        await import_city(committees, city)
        t_import = time.monotonic() - t
        t = time.monotonic()
        await settled(list(procs.values()), timeout=1800 * grow)
        print(
            f"city (scale {args.scale}): {len(city.staff):,} staff, {len(city.students):,} students, "
            f"{len(city.families):,} families; import {t_import:.0f}s, the services consumed the directory "
            f"{time.monotonic() - t:.0f}s later",
            flush=True,
        )

        t = time.monotonic()
        cid, assignments, checklist, starts_on = await launch_campaign(visits, "千师访万家 · bench")
        t_launch = time.monotonic() - t
        records, jobs, teachers, live = visit_jobs(rng, assignments, checklist, starts_on, args.single_share)
        n_single = sum(j.live for j in jobs)
        n_batches = len(jobs) - n_single
        findings = sum(len(r.get("findings", [])) for r in records)
        want_cases = len(expected_outcomes(records)[0])
        t = time.monotonic()
        await settled(
            list(procs.values()), timeout=1800 * grow
        )  # the launch's assignment events are consumed before the clock starts
        t_settle = time.monotonic() - t
        print(
            f"campaign: {len(records):,} visits ({findings:,} findings, {want_cases:,} cases expected) by "
            f"{len(teachers):,} teachers: {len(live):,} record live ({n_single:,} POST /visits), "
            f"{len(teachers) - len(live):,} upload offline ({n_batches:,} POST /visits/batch, "
            f"~{(len(records) - n_single) / max(n_batches, 1):.0f} visits each); {args.clients} concurrent "
            f"connections; launch + assignments read {t_launch:.0f}s, their events consumed {t_settle:.0f}s later",
            flush=True,
        )

        infra = {c.name: getattr(c, "pid", lambda: None)() or 0 for c in components()}  # none when external
        if args.staged:
            lines, accepted = await staged(procs, infra, jobs, args, cid, want_cases, outreach_db, reporting)
            copied, copy_rate = await raw_copy(stack, schemas["visits"], scratch)
            lines.append(
                f"raw PostgreSQL COPY of the same {copied:,} visit rows: {copy_rate:,.0f} rows/s; visits alone "
                f"accepted {accepted / copy_rate:.3f} x raw (the whole campaign's target: ≥ {TARGET_COPY_RATIO} x raw)"
            )
            print("\n".join(lines))
            return
        await visits_db.execute(PROBE.format(v=schemas["visits"]))
        messages_before = await topic_messages(stack.kafka_bootstrap, prefix)
        peak: dict[str, int] = {}
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(pids, peak, stop))
        backlog: list[tuple[float, int]] = []
        backlog_sampler = asyncio.create_task(sample_backlog(dbs["visits"], schemas["visits"], backlog, stop))
        pg_spent: dict[str, float] = {}
        pg_sampler = (
            asyncio.create_task(
                sample_pg_cpu(stack.database_url, infra["postgres"], {v: k for k, v in schemas.items()}, pg_spent, stop)
            )
            if infra.get("postgres")
            else None
        )
        cpu0 = cpu_now(pids, infra)
        applied0 = {n: consumed(procs[n]) for n in ("outreach", "reporting")}
        statements = await statement_stats(cluster_db, reset=True)
        updates0 = await assignment_updates(visits_db, schemas["visits"])
        wal0 = await wal_counters(cluster_db)
        me0, busy0 = resource.getrusage(resource.RUSAGE_SELF), machine_busy()
        rec = await recorder.record(visits_addresses(procs), jobs, args.clients, campaign_id=cid)
        want = (rec.stored, want_cases)
        wait = args.max_wait * grow
        t_out, t_rep, t_lag = await caught_up(
            outreach_db, reporting_db, reporting, procs["reporting"], schemas["reporting"], cid, want, wait
        )
        t_end = time.monotonic()
        stop.set()
        await sampler
        await backlog_sampler
        cpu = {n: v - cpu0[n] for n, v in cpu_now(pids, infra).items()}
        if pg_sampler is not None:
            await pg_sampler
        me1, busy1 = resource.getrusage(resource.RUSAGE_SELF), machine_busy()
        applied = {n: [b - a for a, b in zip(applied0[n], consumed(procs[n]), strict=True)] for n in applied0}
        messages = await topic_messages(stack.kafka_bootstrap, prefix) - messages_before
        hwm = {n: max(vm_hwm(p), peak.get(n, 0)) for n, p in pids.items()}
        load_end = os.getloadavg()
        statements = await statement_stats(cluster_db)
        await asyncio.sleep(1)  # the backends' statistics reach the views at most a second after their transactions
        records_wal, fpi, wal_bytes, checkpoints = (
            b - a for a, b in zip(wal0, await wal_counters(cluster_db), strict=True)
        )
        updated, hot = (
            b - a for a, b in zip(updates0, await assignment_updates(visits_db, schemas["visits"]), strict=True)
        )

        cases = await outreach_db.fetch(
            "SELECT DISTINCT ON (c.case_id) f.finding_id,"
            " extract(epoch FROM c.finding_recorded_at)::float8 AS recorded,"
            " extract(epoch FROM c.committed_at)::float8 AS committed"
            " FROM cases c JOIN case_findings f ON f.case_id = c.case_id AND f.recorded_at = c.finding_recorded_at"
            " ORDER BY c.case_id, f.effect = 'opened' DESC"
        )
        lat = [(r["committed"] - r["recorded"]) * 1000 for r in cases]
        sent = await appended_at(stack.kafka_bootstrap, f"{prefix}visits.finding.events")
        joined = [
            r[0] * 1000
            for r in await outreach_db.fetch(
                "SELECT extract(epoch FROM applied_at - recorded_at)::float8 FROM case_findings"
            )
        ]
        figures = (await reporting.get("/children", org_path=CITY, campaign_id=cid))["self"]["figures"]
        copied, copy_rate = await raw_copy(stack, schemas["visits"], scratch)
        produce_n = max(messages, 10_000)
        await kafka.ensure_topics(stack.kafka_bootstrap, [kafka.TopicSpec(f"{prefix}raw", 6)])
        try:  # a yardstick: its failure (a broker starved on a loaded machine) must not lose the campaign's figures
            produce_rate = await raw_produce(stack.kafka_bootstrap, f"{prefix}raw", produce_n)
        except KafkaError as exc:
            produce_rate, produce_failed = 0.0, f"failed ({type(exc).__name__})"
        else:
            produce_failed = ""

        accept_s = rec.last - rec.first
        accepted = rec.stored / accept_s
        done = bool(t_out and t_rep)
        wall = (max(t_out, t_rep) if done else t_end) - rec.first
        at = lambda t: f"{t - rec.first:.1f}s" if t else f"not within {t_end - rec.first:.0f}s"  # noqa: E731
        e2e = rec.stored / wall
        at_last = next((n for t, n in backlog if t >= rec.last), 0)
        drained = next((t - rec.last for t, n in backlog if t >= rec.last and n == 0), None)
        p99 = pct(lat, 0.99)
        e2e_ok = done and wall <= TARGET_SECONDS * args.scale
        single, batch = rec.single_ms, rec.batch_ms
        me_cpu = me1.ru_utime + me1.ru_stime - me0.ru_utime - me0.ru_stime
        busy = 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        whole = " for the whole city" if args.scale == 1 else f", the city's {TARGET_SECONDS}s at scale {args.scale}"
        seen = figures["visits"]["completed"] + figures["visits"]["missed"]
        out = [
            f"\nscale {args.scale}: {rec.stored:,} visits stored, {rec.rejected} rejected, "
            f"{len(rec.failed)} failed requests",
            *(f"  failed: {f}" for f in rec.failed[:3]),
            f"accepted (HTTP), first → last answer: {accepted:,.0f} visits/s over {accept_s:.1f}s"
            f"   (target ≥ {TARGET_RATE} sustained: {ok(accepted >= TARGET_RATE)})",
            f"  latency POST /visits p50/p99 {pct(single, 0.5):.0f}/{pct(single, 0.99):.0f} ms, "
            f"POST /visits/batch p50/p99 {pct(batch, 0.5):.0f}/{pct(batch, 0.99):.0f} ms",
            f"first visit → outreach caught up {at(t_out)}, reporting caught up {at(t_rep)} (its consumers had "
            f"no lag at {at(t_lag)}): wall {'' if done else '> '}{wall:.1f}s = {e2e:,.0f} visits/s end to end"
            f"   (target ≤ {TARGET_SECONDS * args.scale:.0f}s{whole}: {ok(e2e_ok)})",
            f"  visits relay backlog (committed outbox rows not yet on Kafka): max {max(n for _, n in backlog):,}, "
            f"{at_last:,} at the last answer, "
            + (f"all published {drained:.0f}s after it" if drained is not None else "not drained"),
            f"finding → case (cases.committed_at − finding recorded_at, {len(lat):,} cases): "
            f"p50 {pct(lat, 0.5):.0f} ms, p99 {p99:.0f} ms, max {max(lat, default=0):.0f} ms"
            f"   (target p99 ≤ {TARGET_P99_MS} ms: {ok(p99 <= TARGET_P99_MS)})",
            hops(cases, sent, await inserted_at(visits_db, schemas["visits"])),
            f"  every finding applied to a case ({len(joined):,}): p50 {pct(joined, 0.5):.0f} ms, "
            f"p99 {pct(joined, 0.99):.0f} ms",
            *(
                f"  {n} consumers applied {a:,.0f} events in the window, {1000 * h / max(a, 1):.2f} ms in handlers each"
                for n, (a, h) in applied.items()
            ),
            f"  reporting shows {seen:,} visits, {figures['cases']['opened']:,} cases",
            f"  visits' assignments: {updated:,} row updates in the window, {hot:,} of them HOT (in their own page)",
            "peak memory: max VmRSS polled during the campaign / VmHWM of the run; CPU seconds in the campaign window",
            *(
                f"  {n:<11} {peak.get(n, 0) / 1024:6.0f} MB / {hwm[n] / 1024:6.0f} MB   CPU {cpu[n]:6.1f}s"
                for n in procs
            ),
            *(f"  {n:<11} (all its processes)      CPU {cpu[n]:6.1f}s" for n in infra if n in cpu),
            *(["  postgres, by what its processes served (polled every second):"] if pg_spent else []),
            *(
                f"    {label:<32} CPU {used:6.1f}s = {1000 * used / max(rec.stored, 1):.3f} ms per visit"
                for label, used in sorted(pg_spent.items(), key=lambda x: -x[1])
            ),
            *statements,
            f"  WAL in the window: {wal_bytes / 2**20:,.0f} MiB = {wal_bytes / max(rec.stored, 1) / 1024:.1f} KiB "
            f"per visit, {records_wal:,} records, {fpi:,} full-page images ({100 * fpi / max(records_wal, 1):.1f} %), "
            f"{checkpoints} checkpoints",
            f"  bench client CPU {me_cpu:.1f}s; machine CPUs {busy:.0f}% busy over the {wall:.0f}s window",
            f"raw PostgreSQL COPY of the same {copied:,} visit rows: {copy_rate:,.0f} rows/s; "
            f"accepted = {accepted / copy_rate:.3f} x raw, end to end = {e2e / copy_rate:.3f} x raw"
            f"   (target accepted ≥ {TARGET_COPY_RATIO} x raw: {ok(accepted / copy_rate >= TARGET_COPY_RATIO)})",
            f"raw Kafka produce of {produce_n:,} × 1 KB (acks=all, idempotent): "
            + (
                produce_failed
                or f"{produce_rate:,.0f} msg/s; the campaign produced {messages:,} events, {messages / wall:,.0f}/s "
                f"end to end = {messages / wall / produce_rate:.3f} x raw"
            ),
            f"load average at start {load_start[0]:.2f}, at the end of the campaign {load_end[0]:.2f} "
            f"({os.cpu_count()} CPUs, shared with other work)",
        ]
        print("\n".join(out))
    finally:
        for conn in (outreach_db, visits_db, reporting_db, cluster_db):
            await conn.close()
        for api in (committees, visits, reporting):
            await api.close()
        for p in procs.values():
            p.stop()
        if args.keep:
            print(f"kept schemas {', '.join(sorted(schemas.values()))} and topics {prefix}* for inspection")
        else:
            await drop_test_resources(stack, prefix, {*schemas.values(), scratch})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="share of the full city (1 = 18,000 teachers)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", action="store_true", help="keep the schemas and topics afterwards (for inspection)")
    ap.add_argument("--single-share", type=float, default=0.25, help="share of teachers recording visit by visit")
    ap.add_argument(
        "--max-wait", type=float, default=1200, help="seconds to wait for outreach and reporting (× the scale above 1)"
    )
    ap.add_argument(
        "--clients", type=int, default=96, help="concurrent HTTP connections of the simulated teachers (of 18,000)"
    )
    ap.add_argument(
        "--staged", action="store_true", help="visits alone takes the campaign, then outreach and reporting catch up"
    )
    ap.add_argument("--visits-replicas", type=int, default=1, help="visits processes (the teachers spread over them)")
    asyncio.run(main(ap.parse_args()))
