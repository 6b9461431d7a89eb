"""Visits recorded per second through the visits HTTP API (single and batch endpoints, with findings).

Sets up a synthetic district by publishing committees' directory events, runs the visits service as a separate
process (uvicorn, as in production), launches a campaign (assignment generation), then measures:
  * single endpoint: POST /api/v1/visits from concurrent clients (teacher tokens, each visit with findings);
  * batch endpoint: POST /api/v1/visits/batch with 500 visits per request from a few concurrent clients;
and checks every visit and finding event reached Kafka (counts on the topics), with the outbox drain time.
Each rate is also given as a ratio to what PostgreSQL alone does on the machine at that moment (single-row commits
from as many connections as clients; COPYs of a batch's size from as many connections as uploaders, the same visit
documents as rows): the machine is shared, so compare ratios, not visits/s, between runs at different loads.
Run: .venv/bin/python bench/visits_record.py [--schools 12 --classes 24 --families 45 --single 3000 --clients 32]
A/B against an older commit: check it out elsewhere (git worktree add --detach /tmp/a REV) and pass --tree /tmp/a:
the service process runs that tree's code; this driver, its district and its raw rates stay the same.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.recorder import Connection
from services.visits.domain.checklist import load
from services.visits.settings import VisitsSettings
from shared import kafka
from shared.auth import issue_token
from shared.contracts.visits import FINDING, VISIT
from shared.devstack import ensure_up
from shared.testing.fixtures import free_port
from tests.integration.visits.directory import build_district, delete_topics, publish

DISTRICT = "/620400/620402"
CATEGORIES = ["left_behind", "family_hardship", "mental_health", "learning_difficulty", "family_education_need"]
SEVERITIES = ["low", "medium", "high", "urgent"]
CHECKLIST = [{"item_id": i.id, "answer": "yes"} for i in load().items(load().current)]


def visit(a: asyncpg.Record, n: int) -> dict[str, Any]:
    """A completed visit with one finding per child (two for every third family)."""
    findings = [
        {"student_id": s, "category": CATEGORIES[(n + j) % 5], "severity": SEVERITIES[n % 4], "note": "观察记录"}
        for j, s in enumerate(a["student_ids"])
    ]
    if n % 3 == 0:
        findings.append({"student_id": a["student_ids"][0], "category": "health_need", "severity": "low"})
    return {
        "assignment_id": a["assignment_id"],
        "status": "completed",
        "visited_on": date.today().isoformat(),
        "mode": ["in_home", "online", "phone", "at_school"][n % 4],
        "duration_minutes": 30 + n % 60,
        "participants": {"teacher_ids": [], "guardian_ids": []},
        "checklist": CHECKLIST,
        "guidance_topics": ["reading_at_home", "screen_time"],
        "findings": findings,
        "note": "家访顺利",
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def count_messages(bootstrap: str, topic: str) -> int:
    """Messages on a topic: the sum of its partitions' end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(await kafka.partitions(consumer, topic))
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def raw_rates(dsn: str, args: argparse.Namespace, seconds: float = 5.0) -> tuple[float, float]:
    """PostgreSQL alone, now: single-row commits/s from `clients` connections, and rows/s committed as COPYs of
    `batch` rows from `uploaders` connections; the rows are the bench's visit documents (jsonb)."""
    schema = f"bench_raw_{uuid.uuid4().hex[:8]}"
    doc = orjson.dumps(visit({"assignment_id": "a", "student_ids": ["s1", "s2"]}, 0)).decode()
    setup = await asyncpg.connect(dsn)
    await setup.execute(f'CREATE SCHEMA "{schema}"; CREATE TABLE "{schema}".raw (id text PRIMARY KEY, doc jsonb)')
    try:

        async def work(rows: int) -> int:
            conn = await asyncpg.connect(dsn)
            done, end = 0, time.perf_counter() + seconds
            try:
                while time.perf_counter() < end:
                    if rows == 1:
                        await conn.execute(f'INSERT INTO "{schema}".raw VALUES ($1, $2)', uuid.uuid4().hex, doc)
                    else:
                        records = [(uuid.uuid4().hex, doc) for _ in range(rows)]
                        await conn.copy_records_to_table("raw", schema_name=schema, records=records)
                    done += rows
            finally:
                await conn.close()
            return done

        single = sum(await asyncio.gather(*(work(1) for _ in range(args.clients)))) / seconds
        batch = sum(await asyncio.gather(*(work(args.batch) for _ in range(args.uploaders)))) / seconds
    finally:
        await setup.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await setup.close()
    return single, batch


async def main(args: argparse.Namespace) -> None:
    stack = ensure_up()
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    settings = VisitsSettings(
        database_url=stack.database_url,
        kafka_bootstrap_servers=stack.kafka_bootstrap,
        db_schema=f"bench_visits_{tag}",
        topic_prefix=f"bench{tag}.",
        http_port=port,
    )
    env = {
        **os.environ,
        "DATABASE_URL": stack.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "VISITS_DB_SCHEMA": settings.db_schema,
        "VISITS_TOPIC_PREFIX": settings.topic_prefix,
        "VISITS_HTTP_PORT": str(port),
        "VISITS_DB_POOL_MAX": str(args.pool),
        "LOG_LEVEL": "WARNING",
    }
    directory = build_district(
        schools=args.schools, classes=args.classes, families_per_class=args.families, subject_teachers=args.subjects
    )
    t0 = time.perf_counter()
    await publish(settings, directory.events)
    print(f"directory: {len(directory.events)} committees events published in {time.perf_counter() - t0:.1f}s")
    raw_single, raw_batch = await raw_rates(stack.database_url, args)
    print(
        f"raw PostgreSQL now: {raw_single:,.0f} single-row commits/s ({args.clients} connections), "
        f"{raw_batch:,.0f} rows/s in COPYs of {args.batch} ({args.uploaders} connections)"
    )
    env["PYTHONPATH"] = args.tree
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "services.visits", env=env, cwd=args.tree)
    db = await asyncpg.connect(stack.database_url, server_settings={"search_path": settings.db_schema})
    url = f"http://127.0.0.1:{port}"
    limits = httpx.Limits(max_connections=args.clients + 8, max_keepalive_connections=args.clients + 8)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            staff = sum(1 for e in directory.events if type(e).__name__ == "StaffRegistered")
            while True:
                try:
                    n = await db.fetchval("SELECT count(*) FROM students")
                    m = await db.fetchval("SELECT count(*) FROM staff")
                except asyncpg.UndefinedTableError:
                    n = m = 0
                if n == directory.students and m == staff:
                    break
                await asyncio.sleep(0.2)
            print(
                f"directory copy: {n} students, {m} staff applied by visits.directory, {time.perf_counter() - t0:.1f}s"
            )

            admin = {"Authorization": "Bearer " + issue_token(role="district_admin", org_path=DISTRICT)}
            body = {
                "name": "bench",
                "org_path": DISTRICT,
                "starts_on": (date.today() - timedelta(days=5)).isoformat(),
                "ends_on": (date.today() + timedelta(days=30)).isoformat(),
            }
            cid = (await http.post("/api/v1/campaigns", json=body, headers=admin)).json()["campaign_id"]
            t0 = time.perf_counter()
            r = await http.post(f"/api/v1/campaigns/{cid}/launch", headers=admin)
            launch_s = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            doc = r.json()
            print(
                f"launch: {doc['assignments']} assignments for {doc['teachers']} teachers "
                f"(max {doc['max_per_teacher']} each) generated, stored and queued as events in {launch_s:.2f}s"
            )
            rows = await db.fetch(
                "SELECT assignment_id, teacher_id, student_ids, school_path FROM assignments "
                "WHERE campaign_id = $1 ORDER BY assignment_id",
                cid,
            )
            single_rows, batch_rows = rows[: args.single], rows[args.single :]
            tokens = {
                t: "Bearer " + issue_token(role="teacher", org_path=directory.teachers[t], staff_id=t)
                for t in {r["teacher_id"] for r in single_rows}
            }

            # Single endpoint, concurrent clients (each request its own teacher's token).
            queue: asyncio.Queue[tuple[int, asyncpg.Record]] = asyncio.Queue()
            for i, a in enumerate(single_rows):
                queue.put_nowait((i, a))
            failures: list[str] = []
            single_findings = 0

            async def client() -> None:
                nonlocal single_findings
                conn = Connection(f"http://127.0.0.1:{port}")  # the demo's teachers' client
                try:
                    while not queue.empty():
                        i, a = queue.get_nowait()
                        v = visit(a, i)
                        single_findings += len(v["findings"])
                        status, text = await conn.post(
                            "/api/v1/visits", orjson.dumps(v), {"Authorization": tokens[a["teacher_id"]]}
                        )
                        if status != 201:
                            failures.append(text[:300].decode(errors="replace"))
                finally:
                    conn.close()

            t0, c0 = time.perf_counter(), cpu_seconds(proc.pid)
            await asyncio.gather(*(client() for _ in range(args.clients)))
            single_s = time.perf_counter() - t0
            single_cpu = cpu_seconds(proc.pid) - c0
            assert not failures, failures[:3]
            print(
                f"single: {len(single_rows)} visits ({single_findings} findings) with {args.clients} concurrent "
                f"clients in {single_s:.2f}s = {len(single_rows) / single_s:,.0f} visits/s "
                f"= {len(single_rows) / single_s / raw_single:.4f}x raw commits "
                f"(service process CPU {1000 * single_cpu / max(len(single_rows), 1):.2f} ms/visit)"
            )

            # Batch endpoint: 500 visits per request, a few concurrent uploaders, school admin tokens.
            chunks = [batch_rows[i : i + args.batch] for i in range(0, len(batch_rows), args.batch)]
            batch_findings = 0
            stored = 0
            base = len(single_rows)

            async def upload(k: int, chunk: list[asyncpg.Record]) -> None:
                nonlocal batch_findings, stored
                items = [visit(a, base + k * args.batch + j) for j, a in enumerate(chunk)]
                batch_findings += sum(len(v["findings"]) for v in items)
                resp = await http.post(
                    "/api/v1/visits/batch",
                    content=orjson.dumps({"visits": items}),
                    headers={**admin, "content-type": "application/json", "Idempotency-Key": f"bench-{k}"},
                )
                assert resp.status_code == 200, resp.text[:300]
                stored += resp.json()["stored"]

            sem = asyncio.Semaphore(args.uploaders)

            async def limited(k: int, chunk: list[asyncpg.Record]) -> None:
                async with sem:
                    await upload(k, chunk)

            t0, c0 = time.perf_counter(), cpu_seconds(proc.pid)
            await asyncio.gather(*(limited(k, c) for k, c in enumerate(chunks)))
            batch_s = time.perf_counter() - t0
            batch_cpu = cpu_seconds(proc.pid) - c0
            assert stored == len(batch_rows), (stored, len(batch_rows))
            print(
                f"batch: {len(batch_rows)} visits ({batch_findings} findings) in {len(chunks)} requests of "
                f"{args.batch}, {args.uploaders} concurrent, in {batch_s:.2f}s "
                f"= {len(batch_rows) / batch_s:,.0f} visits/s "
                f"= {len(batch_rows) / batch_s / raw_batch:.4f}x raw COPY rows "
                f"(service process CPU {1000 * batch_cpu / max(len(batch_rows), 1):.2f} ms/visit)"
            )

            # Every event reached Kafka.
            t0 = time.perf_counter()
            while await db.fetchval("SELECT count(*) FROM outbox"):
                await asyncio.sleep(0.2)
            drain_s = time.perf_counter() - t0
            visits_n = await count_messages(stack.kafka_bootstrap, settings.topic(VISIT))
            findings_n = await count_messages(stack.kafka_bootstrap, settings.topic(FINDING))
            want_v, want_f = len(rows), single_findings + batch_findings
            print(
                f"kafka: {visits_n} visit events (expected {want_v}), {findings_n} finding events (expected {want_f}); "
                f"outbox drained {drain_s:.2f}s after the last request"
            )
            assert visits_n >= want_v and findings_n >= want_f
            total_s = single_s + batch_s + drain_s
            print(f"end to end incl. publishing: {len(rows)} visits, {want_v + want_f} events in {total_s:.1f}s")
            print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (shared with other work)")
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)
        if not args.keep:
            await db.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
            await delete_topics(stack.kafka_bootstrap, settings.topic_prefix)
        await db.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schools", type=int, default=12)
    p.add_argument("--classes", type=int, default=24)
    p.add_argument("--families", type=int, default=45, help="families per class")
    p.add_argument("--subjects", type=int, default=40, help="subject teachers per school")
    p.add_argument("--single", type=int, default=3000, help="visits through the single endpoint")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--uploaders", type=int, default=4)
    p.add_argument("--pool", type=int, default=20, help="service DB pool size")
    p.add_argument("--keep", action="store_true", help="keep the bench schema")
    p.add_argument("--tree", default=None, help="run the visits service from this checkout (A/B runs)")
    parsed = p.parse_args()
    parsed.tree = str(Path(parsed.tree or Path(__file__).parent.parent).resolve())
    asyncio.run(main(parsed))
