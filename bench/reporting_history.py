"""What a small refresh and a read of the city cost as the case history grows: they should not grow with it.

Runs on a reporting schema kept by `bench/campaign.py --keep` (its full city, after the campaign). The campaign's
cases are copied `--campaigns - 1` times as earlier campaigns' (no finding, opened earlier, each with a first contact
0–48 h after it), in steps (1, 4, then `--campaigns` campaigns' worth) and folded by a refresh. At each step:

* a refresh by deltas of one case changed in one class (its first contact), rolled back, `--runs` times: the
  refreshing backend's CPU (from /proc, 10 ms ticks), median. Percentiles used to be recomputed by sorting every case
  under each ancestor of a dirty class, the city included: that cost grew with every case ever opened;
* the city's and its districts' summary (`usecases.views.summaries`, as `/summary/children` reads it): wall time,
  median, and how many figure rows and percentile slots it read.

Beside them, the raw COPY rate of the same case rows into a scratch table. The copies are deleted and the figures
refreshed at the end. Run: .venv/bin/python bench/reporting_history.py --schema bc_<run>_reporting [--campaigns 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.directory_copy import raw_copy
from bench.procs import proc_stat
from bench.reporting_refresh import connect_kept, kept_schema_parser
from services.reporting.store import reads, refresh
from services.reporting.usecases import views

COPIES = """
INSERT INTO cases SELECT 'h{j}-' || case_id, student_id, org_path, path_at, NULL, finding_recorded_at - {days},
    opened_at - {days}, first_contact_due, due_at, opened_at - {days} + random() * interval '48 hours', state, state_at,
    closed_at, overdue, overdue_at
FROM cases WHERE case_id NOT LIKE 'h%'
"""


async def add_history(conn: asyncpg.Connection, schema: str, campaigns: int) -> int:
    """Copies of this campaign's cases as earlier campaigns' until there are `campaigns` campaigns' worth, folded."""
    base = await conn.fetchval("SELECT count(*) FROM cases WHERE case_id NOT LIKE 'h%'")
    have = await conn.fetchval("SELECT count(*) FROM cases") // base
    for j in range(have, campaigns):
        await conn.execute(COPIES.format(j=j, days=f"interval '{30 * j} days'"))
    await conn.execute("INSERT INTO dirty_leaves SELECT DISTINCT org_path FROM cases")
    await refresh.update_figures(conn, schema)
    return int(await conn.fetchval("SELECT count(*) FROM cases"))


async def small_refresh(conn: asyncpg.Connection, leaf: str) -> float:
    """The backend's CPU seconds for a refresh of one case's first contact in one class; rolled back."""
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    tr = conn.transaction(isolation="repeatable_read")
    await tr.start()
    try:
        await conn.execute(
            "UPDATE cases SET first_contact_at = opened_at + interval '3 hours'"
            " WHERE case_id = (SELECT min(case_id) FROM cases WHERE org_path = $1)",
            leaf,
        )
        await conn.execute("INSERT INTO dirty_leaves VALUES ($1)", leaf)
        before = proc_stat(pid)[1]
        await refresh._refresh_deltas(conn)
        return proc_stat(pid)[1] - before
    finally:
        await tr.rollback()


async def city_read(conn: asyncpg.Connection, nodes: list[str]) -> float:
    started = time.perf_counter()
    await views.summaries(conn, nodes, "")
    return time.perf_counter() - started


async def main(a: argparse.Namespace) -> None:
    conn = await connect_kept(a.schema)
    try:
        leaf = await conn.fetchval("SELECT org_path FROM cases WHERE case_id NOT LIKE 'h%' ORDER BY case_id LIMIT 1")
        city = await conn.fetchval("SELECT node FROM node_metrics WHERE parent = '' LIMIT 1")
        nodes = [city, *await reads.list_children(conn, city)]
        for campaigns in sorted({1, min(4, a.campaigns), a.campaigns}):
            cases = await add_history(conn, a.schema, campaigns)
            cpu = [await small_refresh(conn, leaf) for _ in range(a.runs)]
            read_s = [await city_read(conn, nodes) for _ in range(a.runs)]
            rows, slots = await conn.fetchrow(
                "SELECT count(*), count(*) FILTER (WHERE metric LIKE '%\\_hours')"
                " FROM node_metrics WHERE node = ANY($1) AND scope = ''",
                nodes,
            )
            print(
                f"{campaigns:>3} campaigns' cases ({cases:,}): a refresh of one changed case"
                f" {statistics.median(cpu) * 1000:,.0f} ms CPU; the city and its {len(nodes) - 1} districts read in"
                f" {statistics.median(read_s) * 1000:,.1f} ms ({rows:,} figure rows, {slots:,} of them"
                " percentile slots)",
                flush=True,
            )
        scratch = f"bench_history_{uuid.uuid4().hex[:8]}"
        try:
            n, raw = await raw_copy(conn, a.schema, scratch, ("cases",))
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {scratch} CASCADE")
        print(f"raw COPY of the same {n:,} case rows: {raw:,.0f} rows/s")
    finally:
        await conn.execute("DELETE FROM cases WHERE case_id LIKE 'h%'")
        await conn.execute("INSERT INTO dirty_leaves SELECT DISTINCT org_path FROM cases")
        await refresh.update_figures(conn, a.schema)
        await conn.close()


if __name__ == "__main__":
    ap = kept_schema_parser(__doc__)
    ap.add_argument("--campaigns", type=int, default=10, help="campaigns' worth of cases at the last step")
    ap.add_argument("--runs", type=int, default=5)
    asyncio.run(main(ap.parse_args()))
