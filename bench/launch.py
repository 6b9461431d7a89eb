"""Campaign launch for the whole city (issue 16 item 2): plan, assignments and their events, timed.

Runs the visits service as its own process (uvicorn, as in production) on a schema of its own, writes a synthetic
city (five districts; by default 184,200 families and 18,000 teachers, the size of Baiyin) straight into its
directory copy (COPY: what the copy of committees' events holds; the copy's own speed is `bench/campaign.py`'s and
the directory bench's business), then launches `--runs` city-wide campaigns one after the other and prints for each:
  * the launch request (plan, COPY of the assignments, their events into the outbox, commit), seconds: the launch's
    figure (target ≤ 15 s at scale 1), as a ratio to raw COPY of the same assignment rows;
  * then the relay publishing every event of the launch to Kafka (the outbox drained), seconds, beside raw produce;
  * the CPU seconds the visits process and PostgreSQL (all its backends) spent on it;
  * raw COPY of the same assignment rows into a table like the service's (its indexes included), rows/s;
and the raw Kafka produce rate of the same run (one `send` per 1 KB message, acks=all), for the ratios.
It also prints, per launch, the visits process's memory: RSS before the request, its peak during the request (VmHWM,
reset before each launch) and after, the peak's growth over the RSS before; with --memory-debug the interpreter's
own allocator too (`shared.memdebug` dumps before and after: pymalloc arenas now and at their high-water mark, 1 MiB
each), the figure a launch that held the whole city in Python objects drove up and never gave back.
Run: .venv/bin/python bench/launch.py [--scale 1.0] [--runs 3] [--memory-debug]  (scale 1: 40 schools per district,
184,000 families)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.campaign import statement_stats
from bench.kit_throughput import raw_produce
from bench.procs import tree_cpu
from bench.visits_record import cpu_seconds
from services.visits.settings import VisitsSettings
from shared import kafka, memdebug
from shared.auth import issue_token
from shared.contracts import committees as c
from shared.db import service_database_url
from shared.devstack import ensure_up
from shared.devstack.stack import components
from shared.testing.fixtures import free_port
from tests.integration.visits.directory import CITY, Directory, build_district, delete_topics

DISTRICTS = ["620402", "620403", "620421", "620422", "620423"]
COLUMNS = "assignment_id, campaign_id, teacher_id, family_id, student_ids, org_path, school_path, district_path, status"


async def raw_copy(db: asyncpg.Connection, campaign_id: str, scratch: str) -> float:
    """COPY the campaign's assignment rows (read first) into a table like `assignments` with its indexes: rows/s."""
    rows = await db.fetch(f"SELECT {COLUMNS} FROM assignments WHERE campaign_id = $1", campaign_id)
    await db.execute(f"DROP TABLE IF EXISTS {scratch}; CREATE TABLE {scratch} (LIKE assignments INCLUDING ALL)")
    started = time.perf_counter()
    for i in range(0, len(rows), 10_000):
        chunk = rows[i : i + 10_000]
        await db.copy_records_to_table(scratch, records=chunk, columns=[c.strip() for c in COLUMNS.split(",")])
    rate = len(rows) / (time.perf_counter() - started)
    await db.execute(f"DROP TABLE {scratch}")
    return rate


async def maintenance(db: asyncpg.Connection) -> str:
    """The outbox's vacuum and analyze counts and its live/dead rows (autovacuum at a bad moment slows a drain?)."""
    r = await db.fetchrow(
        "SELECT n_live_tup, n_dead_tup, vacuum_count + autovacuum_count AS vacuums, "
        "analyze_count + autoanalyze_count AS analyzes FROM pg_stat_user_tables "
        "WHERE relid = 'outbox'::regclass"
    )
    return f"{r['vacuums']} vacuums, {r['analyzes']} analyzes, {r['n_live_tup']:,} live, {r['n_dead_tup']:,} dead rows"


def status_kb(pid: int, key: str) -> int:
    """A figure of /proc/<pid>/status in kB (VmRSS: resident now, VmHWM: resident at most)."""
    line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith(key + ":"))
    return int(line.split()[1])


def reset_peak(pid: int) -> None:
    """Start VmHWM over from the current RSS (Linux: `5` into clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def dump_after(log: Path, size: int) -> dict[str, int] | None:
    """The pymalloc figures of the first `shared.memdebug` dump written to `log` after its first `size` bytes."""
    with log.open("rb") as f:
        f.seek(size)
        for line in f:
            if line.startswith(b'{"memory_debug"'):
                return dict(orjson.loads(line)["pymalloc"])
    return None


async def arenas(pid: int, log: Path) -> dict[str, int]:
    """The service's pymalloc figures from one `shared.memdebug` dump (SIGUSR1; the dump lands in its log)."""
    size = log.stat().st_size  # noqa: ASYNC240 (a bench: one stat between launches)
    os.kill(pid, signal.SIGUSR1)
    for _ in range(600):
        await asyncio.sleep(0.1)
        if (found := dump_after(log, size)) is not None:
            return found
    raise TimeoutError("no memory dump in the visits log")


def spying(pid: int, into: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the visits process into `into` (collapsed stacks) until sent SIGINT."""
    into.parent.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "100", "-o", str(into)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def write_copy(db: asyncpg.Connection, directory: Directory) -> None:
    """The city's students and teaching staff into the service's directory copy, as its consumer would leave them."""
    while not await db.fetchval("SELECT to_regclass('students') IS NOT NULL AND to_regclass('staff') IS NOT NULL"):
        await asyncio.sleep(0.2)  # the service is still migrating
    students, staff = [], []
    for e in directory.events:
        if isinstance(e, c.StudentRegistered):
            students.append((e.student_id, e.class_id, e.org_path, e.family_id, e.occurred_at))
        elif isinstance(e, c.StaffRegistered):
            staff.append(
                (e.staff_id, e.org_path, [r.value for r in e.roles], e.class_ids, e.head_class_id, e.occurred_at)
            )
    await db.copy_records_to_table(
        "students", records=students, columns=["student_id", "class_id", "org_path", "family_id", "occurred_at"]
    )
    await db.copy_records_to_table(
        "staff", records=staff, columns=["staff_id", "org_path", "roles", "class_ids", "head_class_id", "occurred_at"]
    )
    await db.execute("ANALYZE students; ANALYZE staff")


async def main(args: argparse.Namespace) -> None:
    stack = ensure_up()
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    visits_db = service_database_url(stack.database_url, "visits")  # its own database, as devstack and deployed
    settings = VisitsSettings(
        database_url=visits_db,
        kafka_bootstrap_servers=stack.kafka_bootstrap,
        db_schema=f"bench_launch_{tag}",
        topic_prefix=f"bl{tag}.",
        http_port=port,
    )
    env = {
        **os.environ,
        "DATABASE_URL": visits_db,
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "VISITS_DB_SCHEMA": settings.db_schema,
        "VISITS_TOPIC_PREFIX": settings.topic_prefix,
        "VISITS_HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        **({memdebug.VARIABLE: "1"} if args.memory_debug else {}),
    }
    log = Path(tempfile.gettempdir()) / f"bench_launch_{tag}.log"
    directory = Directory()
    for district in DISTRICTS:
        build_district(
            district,
            schools=max(1, round(args.schools * args.scale)),
            classes=args.classes,
            families_per_class=args.families,
            subject_teachers=args.subjects,
            directory=directory,
        )
    with log.open("wb") as out:  # the service's log (stderr) in a file: the memory dumps are read from it
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.visits", env=env, cwd=Path(__file__).parent.parent, stderr=out
        )
    db = await asyncpg.connect(visits_db)
    while not await db.fetchval("SELECT to_regnamespace($1) IS NOT NULL", settings.db_schema):
        await asyncio.sleep(0.2)
    await db.execute(f"SET search_path = {settings.db_schema}")
    try:
        await write_copy(db, directory)
        print(
            f"city: {len(directory.families):,} families, {directory.students:,} students, "
            f"{len(directory.teachers):,} teaching staff in visits' directory copy",
            flush=True,
        )
        admin = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path=f"/{CITY}")}
        launches, drains, copies, per_assignment, cpu_per = [], [], [], [], []
        growth: list[float] = []  # MB: the RSS peak during each launch request over the RSS before it
        pg = next((c.pid() for c in components() if c.name == "postgres"), None)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
            for run in range(1, args.runs + 1):
                body = {
                    "name": f"launch bench {run}",
                    "org_path": f"/{CITY}",
                    "starts_on": (date.today() - timedelta(days=5)).isoformat(),
                    "ends_on": (date.today() + timedelta(days=30)).isoformat(),
                }
                cid = (await http.post("/api/v1/campaigns", json=body, headers=admin)).json()["campaign_id"]
                spy = spying(proc.pid, args.profile / f"launch{run}.txt") if args.profile else None
                if args.profile:
                    await statement_stats(db, reset=True)
                py0 = await arenas(proc.pid, log) if args.memory_debug else {}
                rss0 = status_kb(proc.pid, "VmRSS")
                reset_peak(proc.pid)
                cpu0, pg0 = cpu_seconds(proc.pid), tree_cpu(pg) if pg else 0.0
                t0 = time.perf_counter()
                r = await http.post(f"/api/v1/campaigns/{cid}/launch", headers=admin)
                launched = time.perf_counter() - t0
                cpu1, pg1 = cpu_seconds(proc.pid), tree_cpu(pg) if pg else 0.0
                peak, rss1 = status_kb(proc.pid, "VmHWM"), status_kb(proc.pid, "VmRSS")
                py1 = await arenas(proc.pid, log) if args.memory_debug else {}
                if spy:
                    spy.send_signal(signal.SIGINT)
                    spy.wait()
                    print("\n".join(await statement_stats(db)), flush=True)
                assert r.status_code == 200, r.text
                doc = r.json()
                if args.profile:
                    await statement_stats(db, reset=True)
                    maintained0 = await maintenance(db)
                # The oldest waiting row through the primary key: a count would read every deleted row until vacuum.
                while await db.fetchval("SELECT id FROM outbox ORDER BY id LIMIT 1"):
                    await asyncio.sleep(0.1)
                total = time.perf_counter() - t0
                if args.profile:
                    after = await maintenance(db)
                    print(f"  the relay's drain: outbox {maintained0} before, {after} after", flush=True)
                    print("\n".join(await statement_stats(db)), flush=True)
                events = doc["assignments"] + 1  # one per assignment, and the launch's
                n = doc["assignments"]
                cpu, pg_cpu = cpu1 - cpu0, pg1 - pg0
                relay_cpu, relay_pg = cpu_seconds(proc.pid) - cpu1, (tree_cpu(pg) if pg else 0.0) - pg1
                copy_rate = await raw_copy(db, cid, f"raw_copy_{tag}")
                launches.append(launched)
                drains.append(total - launched)
                copies.append(copy_rate)
                per_assignment.append(launched / n * 1e6)
                cpu_per.append((cpu + pg_cpu) / n * 1e6)
                print(
                    f"launch {run}: {n:,} assignments for {doc['teachers']:,} teachers; "
                    f"request {launched:.1f}s, then the relay published the last of its {events:,} events "
                    f"{total - launched:.1f}s later ({total:.1f}s in all); request {launched / n * 1e6:.0f} µs per "
                    f"assignment; CPU of the request: visits {cpu:.1f}s, PostgreSQL {pg_cpu:.1f}s "
                    f"({(cpu + pg_cpu) / n * 1e6:.0f} µs per assignment); of the relay's drain: visits "
                    f"{relay_cpu:.1f}s, PostgreSQL {relay_pg:.1f}s; raw COPY of the same rows "
                    f"{copy_rate:,.0f} rows/s ({n / copy_rate:.1f}s): request = "
                    f"{n / copy_rate / launched:.2f} x raw COPY; load average {os.getloadavg()[0]:.0f}",
                    flush=True,
                )
                growth.append((peak - rss0) / 1024)
                print(
                    f"  memory of visits, launch {run}: RSS {rss0 / 1024:.0f} MB before the request, at most "
                    f"{peak / 1024:.0f} MB during it (+{(peak - rss0) / 1024:.0f} MB), {rss1 / 1024:.0f} MB after"
                    + (
                        f"; pymalloc arenas {py0.get('arenas_now')} before, {py1.get('arenas_now')} after, "
                        f"high-water {py0.get('arenas_peak')} → {py1.get('arenas_peak')} (1 MiB each), live small "
                        f"objects {py0.get('allocated_kb', 0) / 1024:.0f} → {py1.get('allocated_kb', 0) / 1024:.0f} MB"
                        if py1
                        else ""
                    ),
                    flush=True,
                )
        raw_topic = f"bl{tag}.raw"
        await kafka.ensure_topics(stack.kafka_bootstrap, [kafka.TopicSpec(raw_topic, settings.topic_partitions)])
        rate = await raw_produce(stack.kafka_bootstrap, raw_topic, args.raw)
        med, copy_med, drain = statistics.median(launches), statistics.median(copies), statistics.median(drains)
        print(
            f"median of {args.runs}: request {med:.1f}s (target <= 15 s at scale 1), "
            f"{statistics.median(per_assignment):.0f} µs per assignment, CPU (visits + PostgreSQL) "
            f"{statistics.median(cpu_per):.0f} µs per assignment; raw COPY {copy_med:,.0f} rows/s: request = "
            f"{n / copy_med / med:.2f} x raw COPY; then the relay {drain:.1f}s ({events / drain:,.0f} events/s); raw "
            f"Kafka produce of {args.raw:,} x 1 KB (acks=all, idempotent): {rate:,.0f} msg/s, the launch's "
            f"{events:,} events would take {events / rate:.1f}s raw: relay = {events / drain / rate:.2f} x raw "
            f"produce; visits' RSS peak during a launch request: +{statistics.median(growth):.0f} MB over its RSS "
            "before (median)",
            flush=True,
        )
    finally:
        proc.terminate()
        await proc.wait()
        await db.execute(f"DROP SCHEMA IF EXISTS {settings.db_schema} CASCADE")
        await db.close()
        await delete_topics(stack.kafka_bootstrap, settings.topic_prefix)
        log.unlink(missing_ok=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="share of the city's schools (1: Baiyin)")
    p.add_argument("--schools", type=int, default=40, help="schools per district (five districts) at scale 1")
    p.add_argument("--classes", type=int, default=20, help="classes per school (one class teacher each)")
    p.add_argument("--families", type=int, default=46, help="one-child families per class")
    p.add_argument("--subjects", type=int, default=70, help="subject teachers per school")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--profile", type=Path, help="py-spy the visits process during each launch request, stacks here")
    p.add_argument("--raw", type=int, default=100_000, help="messages for the raw Kafka produce rate")
    p.add_argument("--memory-debug", action="store_true", help="pymalloc arenas before and after each launch")
    asyncio.run(main(p.parse_args()))
