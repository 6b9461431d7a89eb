"""Bench: reporting replay rate from 1,000,000 contract events vs raw aiokafka, and summary p99 at 200 req/s.

    .venv/bin/python bench/reporting_replay.py [--events 1000000] [--runs 3] [--rps 200] [--seconds 30] [--keep]

1. Generates a synthetic full city (5 districts, ~600 schools, 18,000 teachers, 180,000 assignments and visits,
   findings, cases, referrals, committees, sessions and attendance) as real contract payloads in real envelopes,
   and produces them to a fresh topic prefix (6 partitions per topic) with the relay's `hss-event-type` header.
2. Raw aiokafka: consumes every topic from offset 0, counting messages (the ceiling for any replay).
3. Rebuild: `services.reporting.usecases.rebuild` replays the same topics into a fresh schema (same projection and
   merges as the live consumer, bulk path) and runs the full refresh; reports events/s and its ratio to the raw
   consume just before it. Steps 2 and 3 run `--runs` times (the machine is shared); the medians are printed.
4. Live: the reporting service itself (its consumer group and refresher; a fresh schema and group) projects the same
   topics; reports events/s and its ratio to the raw consume (the path a campaign's events take).
5. Serves the rebuilt read model (uvicorn in a child process, no consumers) and fires an open-loop
   200 req/s at /api/v1/summary for the whole city and the campaign; reports p50/p90/p99/max.
Stops by itself; sends traffic only to 127.0.0.1. Drops its schema and leaves topics (use a new run id).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.campaign import statement_stats  # noqa: E402
from bench.procs import tree_cpu  # noqa: E402
from services.reporting.settings import ReportingSettings  # noqa: E402
from services.reporting.store.refresh import PENDING_SQL  # noqa: E402
from services.reporting.usecases.rebuild import rebuild, topics  # noqa: E402
from shared import kafka  # noqa: E402
from shared.auth import issue_token  # noqa: E402
from shared.contracts import committees as cm  # noqa: E402
from shared.contracts import outreach as out  # noqa: E402
from shared.contracts import visits as vi  # noqa: E402
from shared.contracts.common import Category, Department, OrgLevel, Severity, StaffRole, VisitMode  # noqa: E402
from shared.devstack.stack import components, ensure_up  # noqa: E402
from shared.events import new_envelope, registry  # noqa: E402
from shared.relay import TYPE_HEADER  # noqa: E402
from shared.runner import collector_policy  # noqa: E402
from shared.testing.fixtures import free_port  # noqa: E402

CITY = "/620400"
DISTRICTS = ["620402", "620403", "620421", "620422", "620423"]
CAMPAIGN = "bench-campaign"
ITEMS = [f"r{i:02d}" for i in range(1, 11)]


def city(rng: random.Random, n_events: int) -> Iterator[BaseModel]:
    """The synthetic city's events, directory first; stops after n_events."""
    now = datetime.now(UTC)
    t0 = now - timedelta(days=20)
    emitted = 0

    def at(h: float) -> datetime:
        return t0 + timedelta(hours=h)

    schools: list[tuple[str, list[str]]] = []
    yield cm.OrgUnitRegistered(
        org_unit_id="620400", parent_id=None, level=OrgLevel.CITY, org_path=CITY, name="白银市", occurred_at=at(0)
    )
    for d in DISTRICTS:
        dp = f"{CITY}/{d}"
        yield cm.OrgUnitRegistered(
            org_unit_id=d, parent_id="620400", level=OrgLevel.DISTRICT, org_path=dp, name=d, occurred_at=at(0)
        )
        for s in range(120):
            sid = f"{d}s{s:03d}"
            sp = f"{dp}/{sid}"
            yield cm.OrgUnitRegistered(
                org_unit_id=sid, parent_id=d, level=OrgLevel.SCHOOL, org_path=sp, name=sid, occurred_at=at(0)
            )
            classes = []
            for g in range(6):
                gp = f"{sp}/g{g}"
                yield cm.OrgUnitRegistered(
                    org_unit_id=f"{sid}g{g}",
                    parent_id=sid,
                    level=OrgLevel.GRADE,
                    org_path=gp,
                    name=f"g{g}",
                    occurred_at=at(0),
                )
                for c in range(2 + (s + g) % 2):
                    cp = f"{gp}/c{c}"
                    classes.append(cp)
                    yield cm.OrgUnitRegistered(
                        org_unit_id=f"{sid}g{g}c{c}",
                        parent_id=f"{sid}g{g}",
                        level=OrgLevel.CLASS,
                        org_path=cp,
                        name=f"c{c}",
                        occurred_at=at(0),
                    )
            schools.append((sp, classes))
    yield vi.CampaignLaunched(
        campaign_id=CAMPAIGN,
        name="bench",
        org_path=CITY,
        starts_on=date(2026, 10, 1),
        ends_on=date(2026, 11, 30),
        target_per_teacher=10,
        checklist_version="v1",
        checklist_item_ids=ITEMS,
        occurred_at=at(1),
    )
    # Cooperation structure.
    for sp, classes in schools:
        sid = sp.rsplit("/", 1)[1]
        yield cm.CommitteeFormed(
            committee_id=f"cs{sid}",
            org_unit_id=sid,
            org_path=sp,
            level=cm.CommitteeLevel.SCHOOL,
            formed_on=date(2026, 9, 1),
            occurred_at=at(2),
        )
        for cp in classes:
            if rng.random() < 0.7:
                yield cm.CommitteeFormed(
                    committee_id=f"cc{cp}",
                    org_unit_id=cp,
                    org_path=cp,
                    level=cm.CommitteeLevel.CLASS,
                    formed_on=date(2026, 9, 1),
                    occurred_at=at(2),
                )
        for k in range(4):
            ssid = f"{sid}-ss{k}"
            yield cm.SessionHeld(
                parent_school_id=f"ps{sid}",
                session_id=ssid,
                org_path=sp,
                held_on=date(2026, 10, 5 + k),
                enrolled=100,
                occurred_at=at(30 + k),
            )
            for gno in range(100):
                yield cm.AttendanceRecorded(
                    parent_school_id=f"ps{sid}",
                    session_id=ssid,
                    guardian_id=f"{sid}-gd{gno}",
                    org_path=sp,
                    attended=rng.random() < 0.8,
                    occurred_at=at(31 + k),
                )
    # Visits: 30 teachers per school, 10 families each.
    cats = list(Category)
    sevs = list(Severity)
    modes = list(VisitMode)
    n_case = 0
    for sp, classes in schools:
        sid = sp.rsplit("/", 1)[1]
        for tno in range(30):
            teacher = f"{sid}-t{tno}"
            for k in range(10):
                cp = classes[(tno + k) % len(classes)]
                aid = f"{teacher}-a{k}"
                family = f"{teacher}-f{k}"
                student = f"{family}-st"
                day = date(2026, 10, 1) + timedelta(days=rng.randrange(40))
                yield vi.AssignmentMade(
                    assignment_id=aid,
                    campaign_id=CAMPAIGN,
                    teacher_id=teacher,
                    family_id=family,
                    student_ids=[student],
                    org_path=cp,
                    occurred_at=at(3),
                )
                if rng.random() < 0.1:
                    yield vi.VisitMissed(
                        visit_id=f"{aid}-v",
                        campaign_id=CAMPAIGN,
                        assignment_id=aid,
                        teacher_id=teacher,
                        family_id=family,
                        org_path=cp,
                        reason=vi.MissReason.FAMILY_UNAVAILABLE,
                        occurred_at=at(50),
                    )
                    continue
                n_find = 1 if rng.random() < 0.15 else 0
                yield vi.VisitCompleted(
                    visit_id=f"{aid}-v",
                    campaign_id=CAMPAIGN,
                    assignment_id=aid,
                    teacher_id=teacher,
                    family_id=family,
                    student_ids=[student],
                    org_path=cp,
                    mode=rng.choice(modes),
                    visited_on=day,
                    duration_minutes=40,
                    checklist=[
                        vi.ChecklistItemAnswer(
                            item_id=i, answer=vi.ChecklistAnswer.YES if rng.random() < 0.85 else vi.ChecklistAnswer.NO
                        )
                        for i in ITEMS
                    ],
                    guidance_topics=["reading"],
                    finding_count=n_find,
                    occurred_at=at(50),
                )
                if not n_find:
                    continue
                cat, sev = rng.choice(cats), rng.choice(sevs)
                recorded = at(50 + rng.random())
                yield vi.FindingRecorded(
                    finding_id=f"{aid}-fd",
                    student_id=student,
                    visit_id=f"{aid}-v",
                    campaign_id=CAMPAIGN,
                    teacher_id=teacher,
                    category=cat,
                    severity=sev,
                    org_path=cp,
                    visited_on=day,
                    recorded_at=recorded,
                )
                if sev == Severity.LOW:
                    continue
                n_case += 1
                case = {
                    "case_id": f"k-{aid}",
                    "student_id": student,
                    "org_path": cp,
                    "risk_level": sev,
                    "categories": [cat],
                }
                opened = recorded + timedelta(seconds=rng.randrange(5, 120))
                yield out.CaseOpened(
                    **case,
                    occurred_at=opened,
                    finding_id=f"{aid}-fd",
                    finding_recorded_at=recorded,
                    first_contact_due=opened + timedelta(hours=72),
                )
                yield out.CaseAssigned(
                    **case,
                    occurred_at=opened + timedelta(minutes=5),
                    carers=[out.CarerAssignment(staff_id=teacher, role=StaffRole.CLASS_TEACHER, org_path=sp)],
                )
                if rng.random() < 0.85:
                    contact = opened + timedelta(hours=rng.randrange(1, 90))
                    yield out.CaseContactLogged(
                        **case,
                        occurred_at=contact,
                        contact_id=f"ct-{aid}",
                        mode="home",
                        contacted_at=contact,
                        first_contact=True,
                    )
                    if rng.random() < 0.4:
                        yield out.CaseClosed(
                            **case,
                            occurred_at=contact + timedelta(days=3),
                            reason_code="resolved",
                            approved_by_role="school_admin",
                        )
                if sev in (Severity.HIGH, Severity.URGENT):
                    ref = {
                        "referral_id": f"rf-{aid}",
                        "case_id": f"k-{aid}",
                        "department": rng.choice(list(Department)),
                        "category": cat,
                        "urgency": sev,
                        "org_path": sp,
                    }
                    yield out.ReferralRequested(**ref, occurred_at=opened, acknowledge_by=opened + timedelta(hours=24))
                    yield out.ReferralAcknowledged(**ref, occurred_at=opened + timedelta(hours=3))
                if cat in (Category.LEFT_BEHIND, Category.DISABILITY, Category.FAMILY_HARDSHIP):
                    yield out.GroupMembershipRegistered(
                        membership_id=f"m-{aid}",
                        student_id=student,
                        group=out.SpecialGroup(cat.value),
                        source=out.GroupSource.VISIT_FINDING,
                        org_path=cp,
                        occurred_at=opened,
                    )
    # Pad with directory events (students) up to the requested size.
    i = 0
    while True:
        sp, classes = schools[i % len(schools)]
        cp = classes[i % len(classes)]
        yield cm.StudentRegistered(
            student_id=f"pad-st{i}",
            class_id=cp.rsplit("/", 1)[1],
            org_path=cp,
            family_id=f"pad-f{i}",
            occurred_at=at(0),
        )
        i += 1
        emitted += 1


async def produce(settings: ReportingSettings, n_events: int) -> dict[str, int]:
    """Generate and produce n_events envelopes; returns counts per event type."""
    await kafka.ensure_topics(
        settings.kafka_bootstrap_servers,
        # Every topic of the three contracts: the city's directory events too, which reporting does not read.
        [
            kafka.TopicSpec(settings.topic(t), partitions=6, replication=1)
            for t in registry.topics_for(
                [s.type for s in registry.all() if s.service in ("committees", "visits", "outreach")]
            )
        ],
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        linger_ms=20,
        max_batch_size=1024 * 1024,
        compression_type=None,
    )
    await producer.start()
    counts: dict[str, int] = {}
    try:
        rng = random.Random(2026)
        corr = str(uuid.uuid4())
        pending = []
        for n, payload in enumerate(city(rng, n_events)):
            if n >= n_events:
                break
            spec = registry.spec_for(payload)
            env = new_envelope(spec, payload, correlation_id=corr, causation_id=None)
            counts[spec.type] = counts.get(spec.type, 0) + 1
            pending.append(
                await producer.send(
                    settings.topic(spec.topic_for(payload)),
                    value=env.model_dump_json().encode(),
                    key=spec.key(payload).encode(),
                    headers=[(TYPE_HEADER, spec.type.encode())],  # as the relay sends it
                )
            )
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return counts


async def raw_consume(settings: ReportingSettings) -> tuple[int, float]:
    """Consume every topic from offset 0 with a bare aiokafka consumer; (messages, seconds)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = []
        for name in topics(settings):
            parts = await kafka.partitions(consumer, name, wait=10)
            if not parts:
                raise SystemExit(f"topic {name} does not exist (was the broker reset? produce again without --prefix)")
            tps += parts
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        total, n = sum(end.values()), 0
        started = time.perf_counter()
        while n < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            n += sum(len(v) for v in batch.values())
        return n, time.perf_counter() - started
    finally:
        await consumer.stop()


SERVE = """
import sys, uvicorn
from services.reporting.app import build_spec
from services.reporting.settings import ReportingSettings
from shared.web import create_app
s = ReportingSettings(db_schema=sys.argv[1], topic_prefix=sys.argv[2], http_port=int(sys.argv[3]))
spec = build_spec(s)
spec.consumers = {}  # serve the rebuilt model only; no live consumer competing for the CPU
uvicorn.run(create_app(spec), host="127.0.0.1", port=s.http_port, log_level="warning", access_log=False)
"""


LIVE = """
import sys, uvicorn
from services.reporting.app import create
from services.reporting.settings import ReportingSettings
s = ReportingSettings(db_schema=sys.argv[1], topic_prefix=sys.argv[2], http_port=int(sys.argv[3]),
                      consumer_group=sys.argv[4])
uvicorn.run(create(s), host="127.0.0.1", port=s.http_port, log_level="warning", access_log=False)
"""


def consumed(metrics: str) -> int:
    """Events the group took from Kafka for good (applied, ignored or duplicate; not retries), from /metrics."""
    done = ('outcome="applied"', 'outcome="ignored"', 'outcome="duplicate"')
    return int(
        sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("events_consumed_total{") and any(o in line for o in done)
        )
    )


async def live_projection(settings: ReportingSettings, prefix: str, events: int, keep: bool) -> tuple[float, float]:
    """The service itself (its inbox consumer group and refresher, a fresh schema and group) projects the topics
    live: (seconds from its first consumed event until it took all `events`, seconds more until the figures were
    refreshed: no dirty leaf or change log left)."""
    run = uuid.uuid4().hex[:6]
    schema, port = f"{settings.db_schema}_live", free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LIVE,
        schema,
        prefix,
        str(port),
        f"live{run}.projections",
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    db = await asyncpg.connect(settings.database_url, server_settings={"search_path": schema})
    try:
        first = None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            while True:
                await asyncio.sleep(0.2)
                if proc.returncode is not None:
                    raise RuntimeError("the reporting service exited")
                try:
                    n = consumed((await c.get("/metrics")).text)
                except httpx.HTTPError:
                    continue
                if n and first is None:
                    first = time.perf_counter()
                if n >= events:
                    took = time.perf_counter() - (first or time.perf_counter())
                    break
        while await db.fetchval(PENDING_SQL):  # the refresher's own check: anything left to fold
            await asyncio.sleep(0.2)
        return took, time.perf_counter() - (first or 0) - took
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        if not keep:
            await db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await db.close()


class Conn:
    """A minimal keep-alive HTTP/1.1 client connection (httpx costs more CPU than the server on 2 cores)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def get(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


async def load(url: str, token: str, rps: int, seconds: float, conns: int = 64) -> list[float]:
    """Open-loop load: a request is due every 1/rps s; latency counts from when it was due (no omission)."""
    host, port = url.removeprefix("http://").split(":")
    path = f"/api/v1/summary?org_path={CITY}&campaign_id={CAMPAIGN}"
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(conns):
        idle.put_nowait(Conn(*await asyncio.open_connection(host, int(port))))
    lat: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        conn = await idle.get()
        try:
            if await conn.get(request) != 200:
                errors += 1
        finally:
            idle.put_nowait(conn)
        lat.append(time.perf_counter() - due)

    for _ in range(50):  # warm up
        await one(time.perf_counter())
    lat.clear()
    tasks = []
    start = time.perf_counter()
    for i in range(int(rps * seconds)):
        due = start + i / rps
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    while not idle.empty():
        idle.get_nowait().writer.close()
    if errors:
        print(f"  errors: {errors}")
    return lat


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rps", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--runs", type=int, default=3, help="replays (each after a raw consume); medians are printed")
    ap.add_argument("--prefix", default="", help="reuse topics produced by an earlier run")
    ap.add_argument("--keep", action="store_true", help="keep the bench schema")
    ap.add_argument("--statements", action="store_true", help="print the rebuilds' top statements (pg_stat_statements)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    collector_policy()  # as the rebuild's own command (`python -m services.reporting.usecases.rebuild`) runs it
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    # PostgreSQL's CPU is counted when devstack runs it (DATABASE_URL/KAFKA_BOOTSTRAP_SERVERS not set beforehand).
    postgres = next((c.pid() for c in components() if c.name == "postgres" and hasattr(c, "pid")), None)
    if postgres:
        os.environ.update(ensure_up().env())
    run = uuid.uuid4().hex[:8]
    prefix = a.prefix or f"bench{run}."
    settings = ReportingSettings(topic_prefix=prefix, db_schema=f"bench_reporting_{run}")
    print(f"run {run}: prefix {prefix!r}, schema {settings.db_schema!r}")

    if not a.prefix:
        t = time.perf_counter()
        counts = await produce(settings, a.events)
        print(f"produced {sum(counts.values()):,} events in {time.perf_counter() - t:.1f}s")
        for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"  {v:>9,}  {k}")

    # Medians of --runs: raw consume and the rebuild alternate, so both see the same machine (it is shared).
    raw_rates: list[float] = []
    rates: list[float] = []
    refreshes: list[float] = []
    pg_cpus: list[float] = []
    cpus: list[float] = []
    admin = await asyncpg.connect(settings.database_url)
    for i in range(a.runs):
        n, secs = await raw_consume(settings)
        raw_rates.append(n / secs)
        await statement_stats(admin, reset=True)
        pg0 = tree_cpu(postgres) if postgres else float("nan")
        stats = await rebuild(settings, swap=i == a.runs - 1)
        await asyncio.sleep(1)  # the rebuild's backends exit: PostgreSQL counts their CPU once it reaps them
        pg_cpus.append((tree_cpu(postgres) if postgres else float("nan")) - pg0)
        rates.append(stats.rate)
        cpus.append(1e6 * stats.cpu_seconds / max(stats.events, 1))
        refreshes.append(stats.refresh_seconds)
        if a.statements:
            print("\n".join(await statement_stats(admin)))
        print(
            f"run {i + 1}: raw aiokafka consume {n:,} messages in {secs:.1f}s = {n / secs:,.0f} msg/s; "
            f"rebuild replay {stats.events:,} events in {stats.seconds:.1f}s = {stats.rate:,.0f} events/s "
            f"({stats.rate / (n / secs):.2f} x raw consume), its CPU {cpus[-1]:.1f} us per event; "
            f"full refresh {stats.refresh_seconds:.1f}s; "
            f"PostgreSQL CPU of the rebuild {pg_cpus[-1]:.2f}s ({1e6 * pg_cpus[-1] / max(stats.events, 1):.0f} us per "
            f"event); skipped {stats.skipped}",
            flush=True,
        )
    raw, rate = statistics.median(raw_rates), statistics.median(rates)
    ratios = ", ".join(f"{r / w:.2f}" for r, w in zip(rates, raw_rates, strict=True))
    print(
        f"median of {a.runs}: raw consume {raw:,.0f} msg/s, rebuild replay {rate:,.0f} events/s = "
        f"{rate / raw:.2f} x raw consume (runs: {ratios}), replay CPU {statistics.median(cpus):.1f} us per event; "
        f"full refresh {statistics.median(refreshes):.1f}s; PostgreSQL CPU of a rebuild "
        f"{statistics.median(pg_cpus):.2f}s (runs: {', '.join(f'{c:.2f}' for c in pg_cpus)})"
    )
    await admin.close()

    # The live path: the service's own consumer group (inbox, one poll's events per transaction, the refresher
    # folding what changed) on the same topics. A campaign's events come this way, and what it cannot take in
    # time is the backlog a demo or a campaign waits for.
    n_live = stats.events  # every record on the topics reporting reads
    live, settle = await live_projection(settings, prefix, n_live, a.keep)
    print(
        f"live projection (the service's consumer group and refresher, a fresh schema): {n_live:,} events in "
        f"{live:.1f}s = {n_live / live:,.0f} events/s = {n_live / live / raw:.3f} x raw consume; figures refreshed "
        f"{settle:.1f}s after the last event was taken",
        flush=True,
    )

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SERVE,
        settings.db_schema,
        prefix,
        str(port),
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    try:
        url = f"http://127.0.0.1:{port}"
        token = issue_token(role="bureau_admin", org_path=CITY)
        async with httpx.AsyncClient(base_url=url) as c:
            for _ in range(200):
                try:
                    r = await c.get(
                        "/api/v1/summary",
                        params={"org_path": CITY, "campaign_id": CAMPAIGN},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if r.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            f = r.json()["figures"]
            print(
                f"city summary: families {f['families']['assigned']:,} assigned, {f['families']['visited']:,} "
                f"visited, visits {f['visits']['completed']:,}, findings {f['findings']['total']:,}, "
                f"cases {f['cases']['opened']:,}"
            )
        lat = await load(url, token, a.rps, a.seconds)
        print(
            f"summary /620400 at {a.rps} req/s for {a.seconds:.0f}s ({len(lat)} requests): "
            f"p50 {pct(lat, 0.5):.1f} ms, p90 {pct(lat, 0.9):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, "
            f"max {max(lat) * 1000:.1f} ms, mean {statistics.mean(lat) * 1000:.1f} ms"
        )
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        if not a.keep:
            conn = await asyncpg.connect(settings.database_url)
            await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
            await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
