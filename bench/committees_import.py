"""City import rate of the committees service, through its HTTP API, against the real stack.

Generates the synthetic city (demo.citygen, with a few planted bad rows), uploads its CSV export to a fresh
committees instance (own schema and topic prefix), starts the import and polls it, checks the counts and the
reported row errors; prints students+guardians rows/s for the import (HTTP start → job committed, with its
~400k outbox events), the re-import of the same files (must change nothing and publish nothing) and how long
the relay then takes to drain the outbox to Kafka. Drops its schema and topics afterwards.
Run: .venv/bin/python bench/committees_import.py [--scale 1.0] [--no-drain] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient

from bench.campaign import statement_stats
from bench.directory_copy import raw_copy
from bench.procs import tree_cpu
from demo import citygen
from services.committees.app import TOPICS, create
from services.committees.settings import Settings
from shared.auth import issue_token
from shared.devstack import ensure_up
from shared.devstack.stack import components
from shared.testing.fixtures import free_port, serve

RAW = ("students", "guardians")  # the tables whose raw COPY rate the import is compared with
TARGET_ROWS = 582_000  # the full city's students and guardians
H = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path="/620400")}


def cpu_now() -> tuple[float, float]:
    """CPU seconds so far of this process (the committees service runs in it) with its children (the import's
    validating process), and of PostgreSQL (postmaster, backends)."""
    postgres = next((c.pid() for c in components() if c.name == "postgres" and hasattr(c, "pid")), None)
    return tree_cpu(os.getpid()), tree_cpu(postgres) if postgres else float("nan")


def rss_kb(pid: int) -> int:
    """VmRSS of a process in kB (0 once it is gone)."""
    with contextlib.suppress(OSError, StopIteration):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(ln for ln in status if ln.startswith("VmRSS:")).split()[1])
    return 0


def private_kb(pid: int) -> int:
    """The memory only this process holds, in kB (Private_Clean + Private_Dirty: not the pages a fork still shares
    with its parent), 0 once it is gone."""
    with contextlib.suppress(OSError, ValueError):
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        return sum(int(ln.split()[1]) for ln in lines if ln.startswith("Private_"))
    return 0


def children(pid: int) -> list[int]:
    """The child processes of `pid` (of any of its threads)."""
    kids: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                kids += map(int, (task / "children").read_text().split())
    return kids


class Memory:
    """Polls, every 0.1 s in a thread of its own (the event loop is busy), the RSS of this process (the committees
    service runs in it) and of its children (the import's validating process), and every 0.5 s the children's
    private memory (what a fork does not share with this process, which holds the bench's generated city); keeps
    each one's peak."""

    def __init__(self) -> None:
        self.before = rss_kb(os.getpid())
        self.peak = self.child = self.both = self.child_own = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        me = os.getpid()
        polls = 0
        while not self.stop.wait(0.1):
            kids = children(me)
            own, theirs = rss_kb(me), sum(map(rss_kb, kids))
            self.peak, self.child = max(self.peak, own), max(self.child, theirs)
            self.both = max(self.both, own + theirs)
            polls += 1
            if polls % 5 == 0:
                self.child_own = max(self.child_own, sum(map(private_kb, kids)))

    def report(self) -> str:
        self.stop.set()
        self.thread.join()
        mb = 1024
        return (
            f"memory during the import: this process (committees in it, and the bench's city) "
            f"{self.before / mb:.0f} MB "
            f"before, at most {self.peak / mb:.0f} MB (+{(self.peak - self.before) / mb:.0f} MB); its validating "
            f"process at most {self.child / mb:.0f} MB RSS, of it its own (private, not shared with this process) at "
            f"most {self.child_own / mb:.0f} MB; both together at most {self.both / mb:.0f} MB RSS "
            f"(+{(self.both - self.before) / mb:.0f} MB over the process before)"
        )


async def run_import(
    http: httpx.AsyncClient, texts: dict[str, str], cpu: list[tuple[float, float]] | None = None
) -> tuple[dict[str, Any], float, float]:
    """Upload, start and wait; the job, the upload seconds and the import seconds (`cpu` gets the CPU figures at
    the start and at the end of the import)."""
    t0 = time.perf_counter()
    import_id = (await http.post("/api/v1/imports/csv", headers=H)).json()["import_id"]
    for entity, text in texts.items():
        r = await http.put(
            f"/api/v1/imports/{import_id}/files/{entity}",
            content=text.encode(),
            headers={**H, "content-type": "text/csv"},
        )
        r.raise_for_status()
    t1 = time.perf_counter()
    if cpu is not None:
        cpu.append(cpu_now())
    (await http.post(f"/api/v1/imports/{import_id}/start", headers=H)).raise_for_status()
    while True:
        job = (await http.get(f"/api/v1/imports/{import_id}", headers=H)).json()
        if job["status"] in ("succeeded", "failed"):
            t2 = time.perf_counter()
            if cpu is not None:
                await asyncio.sleep(0.5)  # the validating process exits and is reaped (its CPU then counts)
                cpu.append(cpu_now())
            return job, t1 - t0, t2 - t1
        await asyncio.sleep(0.25)


async def main(scale: float, drain: bool, keep: bool) -> None:
    stack = ensure_up()
    t = time.perf_counter()
    city = citygen.generate(scale, seed=42)
    texts, planted = citygen.plant_bad_rows(citygen.csv_texts(city))
    counts = city.counts()
    print(f"city scale {scale}: {counts} (generated + CSV in {time.perf_counter() - t:.1f}s)")
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        database_url=stack.database_url,
        kafka_bootstrap_servers=stack.kafka_bootstrap,
        db_schema=f"bench_committees_{tag}",
        topic_prefix=f"bench{tag}.",
        topic_partitions=6,
        http_port=free_port(),
    )
    rows = counts["students"] + counts["guardians"]
    try:
        async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url, timeout=600) as http:
            stats = await asyncpg.connect(stack.database_url)
            try:
                await statement_stats(stats, reset=True)
                cpu: list[tuple[float, float]] = []
                memory = Memory()
                job, upload_s, import_s = await run_import(http, texts, cpu)
                memory_line = memory.report()
                print("\n".join(await statement_stats(stats)))
                copied, copy_rate = await raw_copy(stats, settings.db_schema, f"{settings.db_schema}_raw", RAW)
                await stats.execute(f'DROP SCHEMA "{settings.db_schema}_raw" CASCADE')
            finally:
                await stats.close()
            assert job["status"] == "succeeded", job
            reported = {(e["entity"], e["row"], e["field"]) for e in job["errors"]}
            exact = all(job["counts"][e]["created"] == n for e, n in counts.items())
            print(
                f"counts {job['counts']}\nexact counts: {exact}; {len(planted)} planted bad fields reported at "
                f"the right lines: {reported == planted}"
            )
            print(
                f"upload of {sum(len(x) for x in texts.values()) / 1e6:.1f} MB CSV: {upload_s:.1f}s; upload + import "
                f"(every file accepted and stored, the job committed with its events in the outbox): "
                f"{upload_s + import_s:.1f}s"
            )
            print(
                f"import: {import_s:.1f}s, {job['events']} events, "
                f"{rows / import_s:,.0f} students+guardians rows/s ({counts['students']} students, "
                f"{counts['guardians']} guardians; all {sum(counts.values()) / import_s:,.0f} rows/s)"
            )
            print(f"import steps (s): {job['timings']}")
            (me0, pg0), (me1, pg1) = cpu
            print(
                f"CPU during the import: committees process (with its validating process) {me1 - me0:.1f}s = "
                f"{(me1 - me0) / rows * 1e6:.0f} us per students+guardians row; PostgreSQL {pg1 - pg0:.1f}s = "
                f"{(pg1 - pg0) / rows * 1e6:.0f} us per row (all its processes, other work on this stack included)"
            )
            print(memory_line)
            print(
                f"raw COPY of the same {copied:,} {' and '.join(RAW)} rows: {copy_rate:,.0f} rows/s; the import's "
                f"students+guardians rows/s = {rows / import_s / copy_rate:.3f} x raw COPY (target: the full city in "
                f"25 s, {TARGET_ROWS / 25:,.0f} rows/s)"
            )
            if drain:
                t = time.perf_counter()
                conn = await asyncpg.connect(stack.database_url, server_settings={"search_path": settings.db_schema})
                try:
                    while await conn.fetchval("SELECT count(*) FROM outbox"):
                        await asyncio.sleep(0.5)
                finally:
                    await conn.close()
                d = time.perf_counter() - t
                print(f"relay drained {job['events']} events in {d:.1f}s ({job['events'] / d:,.0f} events/s)")
            again, _, reimport_s = await run_import(http, texts)
            changed = {e: c["created"] + c["updated"] for e, c in again["counts"].items()}
            print(f"re-import: {reimport_s:.1f}s, changed rows {changed}, events {again['events']}")
    finally:
        if not keep:
            conn = await asyncpg.connect(stack.database_url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
            finally:
                await conn.close()
            # the bench's ~400k messages would otherwise stay on the shared broker
            admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
            await admin.start()
            try:
                await admin.delete_topics([settings.topic(t) for t in TOPICS])
            except Exception as exc:
                print(f"could not delete the bench topics: {exc!r}")
            finally:
                await admin.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--no-drain", action="store_true", help="skip waiting for the relay")
    p.add_argument("--keep", action="store_true", help="keep the bench schema")
    a = p.parse_args()
    asyncio.run(main(a.scale, not a.no_drain, a.keep))
