"""CPU per event of the directory copy's consumers in process: the same records, no Kafka fetch, no other process.

`bench/directory_copy.py --keep` leaves a run's directory topics on the broker; this reads them once (a plain
consumer, all partitions) and feeds the records, in the consumer's own poll order and poll size, to visits' and
outreach's directory groups (`InboxConsumer._process`, the path a poll takes, fresh schemas each pass), measuring
the process's CPU time and PostgreSQL's (the stack's server and all its backends). The end-to-end bench's CPU
figures swing ±50 % between runs on a shared machine (service start-up, scrapes, other load); this one's passes
differ by a few per cent, so it is the A/B for a change of the consumer path (run it on each checkout, e.g.
`/path/to/other/.venv/bin/python /path/to/other/bench/directory_apply.py --prefix bdXXXX.`).
Run: .venv/bin/python bench/directory_apply.py --prefix bd<run>. [--passes 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import tree_cpu
from services.outreach.app import build_spec as outreach_spec
from services.outreach.handlers import DIRECTORY_GROUP as OUTREACH_GROUP
from services.outreach.settings import OutreachSettings
from services.visits.app import build_spec as visits_spec
from services.visits.handlers import GROUP as VISITS_GROUP
from services.visits.settings import VisitsSettings
from shared import db, directory, kafka
from shared.devstack import StackInfo, ensure_up
from shared.devstack.stack import components
from shared.inbox import InboxConsumer
from shared.runner import collector_policy
from shared.web import ServiceSpec, migrate


async def records_of(stack: StackInfo, prefix: str) -> list[ConsumerRecord[Any, Any]]:
    """Every record of the run's directory topics, partition by partition in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await kafka.partitions(consumer, [prefix + t for t in directory.TOPICS])
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        got: dict[Any, list[ConsumerRecord[Any, Any]]] = {tp: [] for tp in tps}
        while any(len(got[tp]) < end[tp] for tp in tps):
            for tp, recs in (await consumer.getmany(timeout_ms=500, max_records=10_000)).items():
                got[tp].extend(recs)
        return [r for tp in sorted(tps, key=lambda t: (t.topic, t.partition)) for r in got[tp]]
    finally:
        await consumer.stop()


def polls(records: list[ConsumerRecord[Any, Any]], size: int) -> list[list[ConsumerRecord[Any, Any]]]:
    """The records as a consumer's polls: each takes up to `size`, round-robin over the partitions (aiokafka hands
    out what it has buffered per partition), each poll's records ordered by topic and partition as `_loop` does."""
    by_tp: dict[tuple[str, int], list[ConsumerRecord[Any, Any]]] = {}
    for r in records:
        by_tp.setdefault((r.topic, r.partition), []).append(r)
    out: list[list[ConsumerRecord[Any, Any]]] = []
    cursors = dict.fromkeys(by_tp, 0)
    share = max(1, size // max(1, len(by_tp)))
    while any(cursors[k] < len(v) for k, v in by_tp.items()):
        poll: list[ConsumerRecord[Any, Any]] = []
        for k in sorted(by_tp):
            take = by_tp[k][cursors[k] : cursors[k] + share]
            cursors[k] += len(take)
            poll.extend(take)
        out.append(poll)
    return out


async def one_pass(
    stack: StackInfo, name: str, records: list[ConsumerRecord[Any, Any]], prefix: str
) -> tuple[float, float]:
    """Apply every record through the service's directory group on a fresh schema: (process, PostgreSQL) CPU-s."""
    schema = f"bda_{uuid.uuid4().hex[:8]}_{name}"
    env: dict[str, Any] = {"database_url": stack.database_url, "kafka_bootstrap_servers": stack.kafka_bootstrap}
    env |= {"db_schema": schema, "topic_prefix": prefix}
    spec: ServiceSpec
    if name == "visits":
        spec, group = visits_spec(VisitsSettings(**env)), VISITS_GROUP
    else:
        spec, group = outreach_spec(OutreachSettings(**env, scheduler_enabled=False)), OUTREACH_GROUP
    await migrate(spec)
    s = spec.settings
    pool = await db.create_pool(s.database_url, s.db_schema, min_size=1, max_size=4)
    pg = next((c.pid() for c in components() if c.name == "postgres"), None) or 0
    try:
        consumer = InboxConsumer(s, pool, group, spec.consumers[group])
        batches = polls(records, s.consumer_copy_batch_size)
        cpu0, pg0 = time.process_time(), tree_cpu(pg)
        for poll in batches:
            await consumer._process(poll, None)  # no dead letters in a valid stream
        cpu, pg_cpu = time.process_time() - cpu0, tree_cpu(pg) - pg0
        assert consumer.applied == len(records), (consumer.applied, len(records))
        return cpu, pg_cpu
    finally:
        await pool.close()
        conn = await db.connect(stack.database_url, "public")
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()


async def main(a: argparse.Namespace) -> None:
    stack = ensure_up()
    records = await records_of(stack, a.prefix)
    collector_policy()  # as a service process runs the garbage collector
    n = len(records)
    print(f"{n:,} records of {a.prefix}*", flush=True)
    for name in ("visits", "outreach"):
        runs = [await one_pass(stack, name, records, a.prefix) for _ in range(a.passes)]
        own = statistics.median(c for c, _ in runs)
        pg = statistics.median(p for _, p in runs)
        each = ", ".join(f"{c / n * 1e6:.1f}/{p / n * 1e6:.1f}" for c, p in runs)
        print(
            f"{name}: CPU per event, median of {a.passes} passes: consumer {own / n * 1e6:.1f} µs, PostgreSQL "
            f"{pg / n * 1e6:.1f} µs (passes, consumer/PostgreSQL: {each})",
            flush=True,
        )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prefix", required=True, help="the topic prefix of a kept directory_copy run (bd<run>.)")
    ap.add_argument("--passes", type=int, default=3)
    asyncio.run(main(ap.parse_args()))
