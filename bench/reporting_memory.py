"""Bench: reporting's memory over repeated campaign launches (the soak's RSS steps), with tracemalloc.

    .venv/bin/python bench/reporting_memory.py [--launches 4] [--assignments 40000] [--top 8]

Runs the reporting service in this process (its consumers and refresher, real Kafka and PostgreSQL, a fresh
schema and topic prefix) and produces, `--launches` times, a campaign launch as visits publishes it: the
campaign and one `visits.assignment.made.v1` per family. After each launch has been applied and refreshed it
prints the process's RSS, the Python heap traced by tracemalloc, and the allocation sites that grew most since
the first launch. A service whose memory steps up at each launch shows it here in a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.reporting.app import create  # noqa: E402
from services.reporting.settings import ReportingSettings  # noqa: E402
from shared import kafka  # noqa: E402
from shared.contracts import visits as vi  # noqa: E402
from shared.events import new_envelope, registry  # noqa: E402
from shared.relay import TYPE_HEADER  # noqa: E402
from shared.runner import collector_policy  # noqa: E402
from shared.testing.fixtures import serve  # noqa: E402

SCHOOLS, CLASSES = 300, 20


def rss_mb() -> float:
    """This process's resident set (MB)."""
    line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


async def launch(settings: ReportingSettings, n: int, k: int) -> int:
    """Produce launch number k: the campaign and n assignments across the city's classes."""
    producer = kafka.producer(settings.kafka_bootstrap_servers, client_id="bench-memory")
    await producer.start()
    cid = f"mem-c{k}"
    now = datetime.now(UTC)
    payloads: list[BaseModel] = [
        vi.CampaignLaunched(
            campaign_id=cid,
            name=f"launch {k}",
            org_path="/620400",
            starts_on=date(2026, 10, 1),
            ends_on=date(2026, 11, 30),
            target_per_teacher=10,
            checklist_version="v1",
            checklist_item_ids=["r01", "r02"],
            occurred_at=now,
        )
    ]
    for i in range(n):
        school, cls = i % SCHOOLS, (i // SCHOOLS) % CLASSES
        payloads.append(
            vi.AssignmentMade(
                assignment_id=f"{cid}-a{i}",
                campaign_id=cid,
                teacher_id=f"t{school}-{cls}-{i % 10}",
                family_id=f"f{i}",
                student_ids=[f"s{i}"],
                org_path=f"/620400/620402/s{school}/g{cls % 6}/c{cls}",
                occurred_at=now,
            )
        )
    try:
        pending = []
        for p in payloads:
            spec = registry.spec_for(p)
            env = new_envelope(spec, p, correlation_id=cid, causation_id=None)
            pending.append(
                await producer.send(
                    settings.topic(spec.topic_for(p)),
                    value=env.model_dump_json().encode(),
                    key=spec.key(p).encode(),
                    headers=[(TYPE_HEADER, spec.type.encode())],
                )
            )
        await asyncio.gather(*pending)
    finally:
        await kafka.close_producer(producer)
    return len(payloads)


def top(snap: tracemalloc.Snapshot, base: tracemalloc.Snapshot | None, n: int) -> list[str]:
    """The allocation sites holding most (or, against `base`, grown most), with their last frames."""
    stats: list[tracemalloc.Statistic] | list[tracemalloc.StatisticDiff] = (
        snap.compare_to(base, "traceback") if base is not None else snap.statistics("traceback")
    )
    out = []
    for stat in stats[:n]:
        size = stat.size_diff if isinstance(stat, tracemalloc.StatisticDiff) else stat.size
        if size < 256 * 1024:
            break
        frames = [ln.strip() for ln in stat.traceback.format() if "File" in ln][-3:]
        out.append(f"  {size / 2**20:+.1f} MiB ({stat.count:,} blocks) " + " <- ".join(reversed(frames)))
    return out


async def peak_sampler(best: list[tuple[int, tracemalloc.Snapshot | None]], stop: asyncio.Event) -> None:
    """Snapshot the traced heap whenever it is 20 % above the largest seen in this launch (the transient peak)."""
    while not stop.is_set() and tracemalloc.is_tracing():
        cur = tracemalloc.get_traced_memory()[0]
        if cur > best[0][0] * 1.2 and cur > 8 * 2**20:
            best[0] = (cur, tracemalloc.take_snapshot())
        await asyncio.sleep(0.5)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--launches", type=int, default=4)
    ap.add_argument("--assignments", type=int, default=40_000)
    ap.add_argument("--top", type=int, default=8)
    ap.add_argument("--frames", type=int, default=6, help="frames kept per allocation (more is slower; 0: no tracing)")
    ap.add_argument(
        "--gc",
        choices=("service", "default"),
        default="service",
        help="the collector policy of a service process (shared.runner.collector_policy) or Python's default",
    )
    ap.add_argument("--collect", action="store_true", help="run a full collection before each RSS reading")
    ap.add_argument("--trim", action="store_true", help="give freed C heap back to the OS before each RSS reading")
    ap.add_argument("--produce", nargs=3, metavar=("PREFIX", "N", "K"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.produce:
        await launch(ReportingSettings(topic_prefix=a.produce[0]), int(a.produce[1]), int(a.produce[2]))
        return
    run = uuid.uuid4().hex[:8]
    settings = ReportingSettings(topic_prefix=f"mem{run}.", db_schema=f"mem_{run}_reporting")
    app = create(settings)
    if a.gc == "service":
        collector_policy()
    if a.frames:
        tracemalloc.start(a.frames)
    base: tracemalloc.Snapshot | None = None
    total = 0
    db = await asyncpg.connect(settings.database_url)
    try:
        async with serve(app):
            for k in range(1, a.launches + 1):
                t = time.monotonic()
                best: list[tuple[int, tracemalloc.Snapshot | None]] = [(0, None)]
                stop = asyncio.Event()
                sampler = asyncio.create_task(peak_sampler(best, stop))
                # Produced by a child process: this one's heap is the service's alone.
                child = await asyncio.create_subprocess_exec(
                    sys.executable, __file__, "--produce", settings.topic_prefix, str(a.assignments), str(k)
                )
                if await child.wait():
                    raise SystemExit("producing the launch failed")
                total += a.assignments + 1
                while (
                    await db.fetchval(f'SELECT count(*) FROM "{settings.db_schema}".inbox') < total
                    or await db.fetchval(f'SELECT count(*) FROM "{settings.db_schema}".dirty_leaves') > 0
                ):
                    await asyncio.sleep(0.5)
                await asyncio.sleep(3)  # the refresh after the last batch
                stop.set()
                await sampler
                if a.collect:
                    gc.collect()
                if a.trim:
                    print(f"  RSS {rss_mb():.0f} MB before malloc_trim(0)", flush=True)
                    ctypes.CDLL("libc.so.6").malloc_trim(0)
                traced, peak = tracemalloc.get_traced_memory()
                print(
                    f"launch {k}: {a.assignments + 1:,} events applied and refreshed in {time.monotonic() - t:.0f}s; "
                    f"RSS {rss_mb():.0f} MB, traced {traced / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB)",
                    flush=True,
                )
                if not tracemalloc.is_tracing():
                    continue
                tracemalloc.reset_peak()
                if best[0][1] is not None:
                    print(f"  at the peak snapshot ({best[0][0] / 2**20:.1f} MiB traced), the largest holders:")
                    print("\n".join(top(best[0][1], None, a.top)), flush=True)
                snap = tracemalloc.take_snapshot()
                if base is None:
                    base = snap
                    continue
                print("  grown since launch 1:\n" + "\n".join(top(snap, base, a.top)), flush=True)
    finally:
        await db.execute(f'DROP SCHEMA IF EXISTS "{settings.db_schema}" CASCADE')
        await db.close()


if __name__ == "__main__":
    asyncio.run(main())
