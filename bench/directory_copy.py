"""How fast the city's directory reaches visits and outreach (the kit's directory copy), with raw rates for ratios.

Starts committees, visits and outreach as processes (own schemas and topic prefix, logs in
.devstack/bench-directory-*), imports a generated city through the committees API and, from the moment the import
committed, measures how long the committees relay takes to publish its events and each consumer group (visits.directory,
outreach.directory) to apply all of them. In the same run: the raw Kafka consume rate of the same messages (one plain
consumer reading the run's committees topics) and the raw PostgreSQL COPY rate of the same rows (visits' copy of
students, families and staff into scratch tables), and the CPU each service process, PostgreSQL (all its backends)
and the Kafka broker spent per event from the commit on. Drops its schemas and topics afterwards (unless --keep).
With --catch-up, visits and outreach start only once the relay has published the whole directory, and each group's
rate is its own: events over the time from its first applied event to its last (the relay, perf's part, not in it).
With --alone as well, outreach starts only once visits has applied everything: each group has the machine to itself.
Run: .venv/bin/python bench/directory_copy.py [--scale 1.0] [--runs 1] [--catch-up [--alone]] [--keep] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.campaign import proc_stat, statement_stats, tree_cpu
from demo import citygen
from demo.client import Api, bureau_token
from shared import directory, kafka
from shared.db import service_database_url
from shared.devstack import ServiceProcess, StackInfo, ensure_up, state_dir
from shared.devstack.stack import components
from shared.testing.fixtures import drop_test_resources, free_port

TARGET_SECONDS, TARGET_RATE = 30, 20_000
NAMES = ("committees", "visits", "outreach")
GROUPS = {"visits": "visits.directory", "outreach": "outreach.directory"}


def make(stack: StackInfo, run: str, names: tuple[str, ...] = NAMES) -> dict[str, ServiceProcess]:
    """The services `names` as processes with this run's schemas and topic prefix (not started)."""
    env = {
        **stack.env(),
        "HSS_TOPIC_PREFIX": f"bd{run}.",
        "LOG_LEVEL": "WARNING",
        **{f"{n.upper()}_DB_SCHEMA": f"bd_{run}_{n}" for n in NAMES},
        "OUTREACH_SCHEDULER_ENABLED": "false",
    }
    return {n: ServiceProcess(state_dir() / f"bench-directory-{run}", n, free_port(), env) for n in names}


def start(stack: StackInfo, run: str, names: tuple[str, ...] = NAMES) -> dict[str, ServiceProcess]:
    """The services `names` as processes with this run's schemas and topic prefix, started."""
    procs = make(stack, run, names)
    for p in procs.values():
        p.start()
    return procs


async def raw_consume(bootstrap: str, prefix: str, topics: list[str]) -> tuple[int, float]:
    """Read every message of the run's directory topics with one plain consumer: messages and messages/s."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=16 << 20,
    )
    await consumer.start()
    try:
        tps = await kafka.partitions(consumer, [prefix + t for t in topics])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        want = sum(end.values())
        got = 0
        started = time.perf_counter()
        while got < want:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                got += len(records)
        return got, got / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def published(bootstrap: str, prefix: str) -> int:
    """How many messages the run's directory topics hold."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await kafka.partitions(consumer, [prefix + t for t in directory.TOPICS])
        return sum((await consumer.end_offsets(tps)).values())
    finally:
        await consumer.stop()


async def raw_copy(
    conn: asyncpg.Connection, schema: str, scratch: str, names: tuple[str, ...] = ("students", "families", "staff")
) -> tuple[int, float]:
    """COPY the rows of `schema`'s tables `names` (by default visits' copy of students, families and staff; fetched
    beforehand) into like-for-like scratch tables in a new schema `scratch`: rows, rows/s."""
    await conn.execute(f"CREATE SCHEMA {scratch}")
    tables = {t: await conn.fetch(f"SELECT * FROM {schema}.{t}") for t in names}
    for t in tables:
        await conn.execute(f"CREATE TABLE {scratch}.{t} (LIKE {schema}.{t} INCLUDING ALL)")
    started = time.perf_counter()
    for t, rows in tables.items():
        for i in range(0, len(rows), 10_000):
            chunk = rows[i : i + 10_000]
            await conn.copy_records_to_table(t, schema_name=scratch, records=chunk, columns=list(chunk[0].keys()))
    n = sum(len(r) for r in tables.values())
    return n, n / (time.perf_counter() - started)


def applied(page: str, group: str) -> int:
    """Events a consumer group applied, from its service's /metrics page."""
    return int(
        sum(
            float(ln.rsplit(" ", 1)[1])
            for ln in page.splitlines()
            if ln.startswith("events_consumed_total{") and f'group="{group}"' in ln and 'outcome="applied"' in ln
        )
    )


def profile(procs: dict[str, ServiceProcess], into: Path) -> list[subprocess.Popen[bytes]]:
    """py-spy sampling each service process (collapsed stacks, for `sort | head`), until interrupted."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    into.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [spy, "record", "--pid", str(p.pid()), "--format", "raw", "--rate", "50", "-o", str(into / f"{n}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n, p in procs.items()
    ]


async def one_run(
    stack: StackInfo, city: citygen.City, keep: bool, spy: Path | None, catch_up: bool = False, alone: bool = False
) -> dict[str, float]:
    run = uuid.uuid4().hex[:8]
    prefix, schemas = f"bd{run}.", {n: f"bd_{run}_{n}" for n in NAMES}
    scratch = f"bd_{run}_raw"
    procs = await asyncio.to_thread(start, stack, run, ("committees",) if catch_up else NAMES)
    # Each service process runs in its own database (devstack, as deployed); pg_stat_statements is the cluster's.
    conn = await asyncpg.connect(service_database_url(stack.database_url, "visits"))
    committees_db = await asyncpg.connect(service_database_url(stack.database_url, "committees"))
    committees = Api(procs["committees"].address, bureau_token(), repeatable=True)
    try:
        t = time.monotonic()
        job = await committees.post("/imports", citygen.to_json(city))
        while job["status"] not in ("succeeded", "failed"):
            await asyncio.sleep(0.2)
            job = await committees.get(f"/imports/{job['import_id']}")
        assert job["status"] == "succeeded", job
        committed = time.monotonic()
        cs = schemas["committees"]
        infra = {c.name: c.pid() for c in components() if c.name in ("postgres", "kafka")}

        def cpu_now() -> dict[str, float]:
            """CPU seconds of each service process started so far, of PostgreSQL with all its backends and of the
            Kafka broker (its JVM: the relay's produce and every group's fetches)."""
            return {n: proc_stat(p.pid() or 0)[1] for n, p in procs.items()} | {
                n: tree_cpu(pid) for n, pid in infra.items() if pid
            }

        # CPU seconds each process spends from the commit (with --catch-up: from the consumers' first applied event)
        # until both copies are complete: on a shared machine the time per event in CPU is steadier than the rate.
        cpu0 = cpu_now()
        spies = profile(procs, spy / run) if spy else []
        await statement_stats(conn, reset=True)
        print(f"run {run}: import {committed - t:.1f}s", flush=True)
        events = 0  # the directory events published, known once the relay has published them all
        done: dict[str, float] = {}
        first: dict[str, tuple[float, int]] = {}  # when each group was first seen to have applied events, how many
        starting: list[asyncio.Task[None]] = []
        last_note = time.monotonic()
        while len(done) < 3:
            now = time.monotonic() - committed
            if "relay" not in done and await committees_db.fetchval(f"SELECT id FROM {cs}.outbox LIMIT 1") is None:
                done["relay"] = now
                events = await published(stack.kafka_bootstrap, prefix)
                print(f"  relay: {events:,} directory events published {now:.1f}s after the commit", flush=True)
                if catch_up:  # started side by side (or visits first, alone), watched while they start
                    later = make(stack, run, ("visits",) if alone else tuple(GROUPS))
                    starting = [asyncio.create_task(asyncio.to_thread(p.start)) for p in later.values()]
                    procs |= later
            if alone and "visits" in done and "outreach" not in procs:  # visits is complete: outreach alone now
                later = make(stack, run, ("outreach",))
                starting.append(asyncio.create_task(asyncio.to_thread(later["outreach"].start)))
                procs |= later
            # From the processes' /metrics (cheap), not count(*) over the inbox (which would load the database).
            counts: dict[str, int] = {}
            for name, group in GROUPS.items():
                if name in procs:
                    page: str | None = await asyncio.to_thread(procs[name].get, "/metrics")
                    counts[name] = applied(page or "", group)
            for name, n in counts.items():
                if n and name not in first:
                    first[name] = (time.monotonic() - committed, n)
                    if catch_up and len(first) == 1:
                        cpu0 = cpu_now()
                        spies += profile({n: procs[n] for n in GROUPS if n in procs}, spy / run) if spy else []
                    elif alone:  # started after the others' CPU was taken: its own from its first applied event
                        cpu0[name] = cpu_now()[name]
                        spies += profile({name: procs[name]}, spy / run) if spy else []
                if events and name not in done and n >= events:
                    done[name] = time.monotonic() - committed
            if time.monotonic() - last_note > 15:
                last_note = time.monotonic()
                print(f"  +{last_note - committed:.0f}s: {counts}", flush=True)
            await asyncio.sleep(0.2 if catch_up else 0.5)
        await asyncio.gather(*starting)
        cpu = {n: v - cpu0.get(n, v) for n, v in cpu_now().items()}
        for sp in spies:
            sp.send_signal(signal.SIGINT)
            sp.wait(30)
        print("\n".join(await statement_stats(conn)))
        messages, consume_rate = await raw_consume(stack.kafka_bootstrap, prefix, directory.TOPICS)
        rows, copy_rate = await raw_copy(conn, schemas["visits"], scratch)
        both = max(done["visits"], done["outreach"])
        if catch_up:  # each group's own rate from when it was first seen applying: its time for all events
            done = {"relay": done["relay"]} | {
                n: (done[n] - first[n][0]) * events / max(events - first[n][1], 1) for n in GROUPS
            }
            both = max(done["visits"], done["outreach"])
        out = {
            "events": float(events),
            "relay_s": done["relay"],
            "visits_s": done["visits"],
            "outreach_s": done["outreach"],
            "both_s": both,
            "rate": events / both,
            "consume_rate": consume_rate,
            "copy_rate": copy_rate,
        } | {f"cpu_{n}": v for n, v in cpu.items()}
        print(
            f"  relay published all {done['relay']:.1f}s after the commit; visits applied all "
            + ("in" if catch_up else "at")
            + f" {done['visits']:.1f}s, outreach "
            + ("in" if catch_up else "at")
            + f" {done['outreach']:.1f}s → {events / both:,.0f} events/s per group "
            + ("from its first applied event (consumers started after the relay)" if catch_up else "end to end")
            + f" (target ≤ {TARGET_SECONDS}s, ≥ {TARGET_RATE:,}/s)\n"
            f"  raw Kafka consume of the same {messages:,} messages: {consume_rate:,.0f} msg/s (ratio "
            f"{events / both / consume_rate:.3f}); raw COPY of {rows:,} of the copy's rows: {copy_rate:,.0f} rows/s "
            f"(ratio {events / both / copy_rate:.3f}); load average {os.getloadavg()[0]:.1f}\n"
            f"  CPU per event from the {'first applied event' if catch_up else 'commit'} on: "
            + ", ".join(f"{n} {v / events * 1e6:.0f} µs" for n, v in cpu.items()),
            flush=True,
        )
        return out
    finally:
        await committees.close()
        for p in procs.values():
            p.stop()
        if not keep:
            await drop_test_resources(stack, prefix, {*schemas.values(), scratch})
        await conn.close()
        await committees_db.close()


async def main(a: argparse.Namespace) -> None:
    stack = ensure_up()
    t = time.monotonic()
    city = citygen.generate(scale=a.scale, seed=a.seed)
    print(
        f"city (scale {a.scale}): {len(city.students):,} students, {len(city.families):,} families, "
        f"{len(city.staff):,} staff (generated in {time.monotonic() - t:.0f}s)",
        flush=True,
    )
    catch_up = a.catch_up or a.alone
    results = [await one_run(stack, city, a.keep, a.profile, catch_up, a.alone) for _ in range(a.runs)]
    if len(results) > 1:
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(
            f"median of {len(results)}: both copies complete {med['both_s']:.1f}s after the commit "
            f"(relay {med['relay_s']:.1f}s, visits {med['visits_s']:.1f}s, outreach {med['outreach_s']:.1f}s), "
            f"{med['rate']:,.0f} events/s per group = {med['rate'] / med['consume_rate']:.3f} x raw consume, "
            f"{med['rate'] / med['copy_rate']:.3f} x raw COPY; CPU per event: "
            + ", ".join(f"{k[4:]} {v / med['events'] * 1e6:.0f} µs" for k, v in med.items() if k.startswith("cpu_"))
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="share of the full city")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--runs", type=int, default=1, help="runs (a median is printed for more than one)")
    ap.add_argument("--keep", action="store_true", help="keep the schemas and topics afterwards")
    ap.add_argument("--catch-up", action="store_true", help="start the consumers once the relay published everything")
    ap.add_argument("--alone", action="store_true", help="with --catch-up: outreach starts once visits is complete")
    ap.add_argument("--profile", type=Path, help="py-spy each service from the commit on, collapsed stacks here")
    asyncio.run(main(ap.parse_args()))
