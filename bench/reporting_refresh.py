"""What one refresh by deltas costs reporting's database, and what a change of its settings does to it, A against B.

Runs on a reporting schema kept by `bench/campaign.py --keep` (its full city, after the campaign). Once, and
committed: `--visits` completed visits are moved aside into a table `aside_visits` of that schema and the figures
refreshed. Then, pair after pair: in a transaction, the visits are put back (the facts' change logs record them as
a refresh would find them during a campaign), the service's own refresh by deltas runs with the service's settings
plus A's or B's statements, and the transaction is rolled back. The figure is the refreshing backend's CPU (from
/proc: the same machine), medians of the pairs and how many pairs B won; beside it the raw COPY rate of the same
visit rows into a scratch table, as refreshed visits per CPU-second over raw COPY rows per second. `--restore` puts
the visits back for good and refreshes. `--statements` instead runs the service's refresh `--pairs` times and prints
the refreshing backend's CPU per statement (each statement of a script apart), the largest first: run it on schemas
kept at two scales to see which statements grow with the city for the same change.
Run: .venv/bin/python bench/reporting_refresh.py --schema bc_<run>_reporting [--visits 7500] [--pairs 7]
     [--a "SET LOCAL ..."] [--b "SET LOCAL ..."] [--restore] [--statements]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.directory_copy import raw_copy
from bench.procs import proc_stat
from services.reporting.store import refresh
from shared.db import service_database_url
from shared.devstack import ensure_up


async def set_aside(conn: asyncpg.Connection, schema: str, visits: int) -> None:
    """Move `visits` completed visits aside (once) and refresh, so that putting them back is a refresh's work."""
    if await conn.fetchval("SELECT to_regclass('aside_visits') IS NOT NULL"):
        return
    async with conn.transaction():
        await conn.execute(
            "CREATE TABLE aside_visits AS SELECT * FROM visits WHERE status = 'completed' ORDER BY random() LIMIT $1",
            visits,
        )
        await conn.execute("DELETE FROM visits WHERE visit_id IN (SELECT visit_id FROM aside_visits)")
    await refresh.update_figures(conn, schema)


async def one_refresh(conn: asyncpg.Connection, extra: str, timed: Any = None) -> float:
    """The backend's CPU seconds for a refresh of the visits put back, with `extra` statements run after the
    service's own settings (so they can override them); rolled back. `timed`: the connection the refresh is given
    (a `Timed` one, to see its statements)."""
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    tr = conn.transaction(isolation="repeatable_read")
    await tr.start()
    try:
        await conn.execute("INSERT INTO visits SELECT * FROM aside_visits")
        settings = f"{refresh.DELTA_SETTINGS}; {extra}" if extra else refresh.DELTA_SETTINGS
        before = proc_stat(pid)[1]
        await refresh._refresh_deltas(timed or conn, settings)
        return proc_stat(pid)[1] - before
    finally:
        await tr.rollback()


class Timed:
    """A connection that adds its backend's CPU seconds per statement to `cpu` (keyed by the statement's start): a
    script of several statements (the refresh's are, one round trip each) is run statement by statement, unless a
    quote would be cut."""

    def __init__(self, conn: asyncpg.Connection, pid: int) -> None:
        self.conn, self.pid = conn, pid
        self.cpu: defaultdict[str, float] = defaultdict(float)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)

    async def _timed(self, sql: str, call: Any) -> Any:
        before = proc_stat(self.pid)[1]
        try:
            return await call
        finally:
            self.cpu[" ".join(sql.split())[:100]] += proc_stat(self.pid)[1] - before

    async def execute(self, sql: str, *args: Any) -> Any:
        parts = [p for p in sql.split(";") if p.strip()]
        if args or len(parts) < 2 or any(p.count("'") % 2 for p in parts):
            return await self._timed(sql, self.conn.execute(sql, *args))
        for part in parts:
            await self._timed(part, self.conn.execute(part))
        return None

    async def fetch(self, sql: str, *args: Any) -> Any:
        return await self._timed(sql, self.conn.fetch(sql, *args))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._timed(sql, self.conn.fetchval(sql, *args))


async def statements(conn: asyncpg.Connection, runs: int) -> None:
    """Print the backend's CPU per statement of the service's refresh, per refresh, the largest first."""
    timed = Timed(conn, await conn.fetchval("SELECT pg_backend_pid()"))
    total = sum([await one_refresh(conn, "", timed) for _ in range(runs)])
    n = await conn.fetchval("SELECT count(*) FROM aside_visits")
    print(f"a refresh of {n:,} visits: {total / runs:.3f} CPU-s of its backend, per refresh (mean of {runs}):")
    for sql, cpu in sorted(timed.cpu.items(), key=lambda kv: -kv[1]):
        if cpu / runs >= 0.0005:
            print(f"  {cpu / runs:7.3f}  {sql}")
    print(f"  {(total - sum(timed.cpu.values())) / runs:7.3f}  the rest (cursors, COPY)")


async def connect_kept(schema: str) -> asyncpg.Connection:
    """A connection to a reporting schema kept by `bench/campaign.py --keep` in devstack's cluster."""
    stack = ensure_up()
    conn = await asyncpg.connect(
        service_database_url(stack.database_url, "reporting"), server_settings={"search_path": f'"{schema}"'}
    )
    if not await conn.fetchval("SELECT to_regnamespace($1) IS NOT NULL", schema):
        await conn.close()
        raise SystemExit(f"no schema {schema}: keep one with bench/campaign.py --keep")
    return conn


async def main(a: argparse.Namespace) -> None:
    conn = await connect_kept(a.schema)
    try:
        await set_aside(conn, a.schema, a.visits)
        if a.statements:
            await statements(conn, a.pairs)
            return
        n = await conn.fetchval("SELECT count(*) FROM aside_visits")
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        for _ in range(a.pairs):
            for name, extra in (("A", a.a), ("B", a.b)):
                cpu[name].append(await one_refresh(conn, extra))
        scratch = f"bench_refresh_{uuid.uuid4().hex[:8]}"
        try:
            rows, raw = await raw_copy(conn, a.schema, scratch, ("aside_visits",))
        finally:
            await conn.execute(f"DROP SCHEMA IF EXISTS {scratch} CASCADE")
        for name, extra in (("A", a.a), ("B", a.b)):
            med = statistics.median(cpu[name])
            print(
                f"{name} {extra or '(the service settings)'}: a refresh of {n:,} visits {med:.3f} CPU-s in the median "
                f"{[round(x, 3) for x in cpu[name]]} = {n / med:,.0f} visits per CPU-s = {n / med / raw:.3f} x raw COPY"
            )
        wins = sum(b < x for x, b in zip(cpu["A"], cpu["B"], strict=True))
        ratio = statistics.median(cpu["B"]) / statistics.median(cpu["A"])
        print(f"B / A = {ratio:.2f} in the medians; B cheaper in {wins} of {a.pairs} pairs")
        print(f"raw COPY of the same {rows:,} visit rows: {raw:,.0f} rows/s")
        if a.restore:
            async with conn.transaction():
                await conn.execute("INSERT INTO visits SELECT * FROM aside_visits; DROP TABLE aside_visits")
            await refresh.update_figures(conn, a.schema)
            print("the visits are back and refreshed")
    finally:
        await conn.close()


def kept_schema_parser(doc: str | None) -> argparse.ArgumentParser:
    """The command line of a bench on a kept reporting schema: `--schema`, and the module's first line as help."""
    ap = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    ap.add_argument("--schema", required=True, help="a reporting schema kept by bench/campaign.py --keep")
    return ap


if __name__ == "__main__":
    ap = kept_schema_parser(__doc__)
    ap.add_argument("--visits", type=int, default=7500, help="visits per refresh (a campaign's ~9 s at 800/s)")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--a", default="", help="statements run in A's refresh transaction after the service's own")
    ap.add_argument("--b", default="", help="statements run in B's refresh transaction after the service's own")
    ap.add_argument("--restore", action="store_true", help="put the visits back for good afterwards")
    ap.add_argument("--statements", action="store_true", help="the service's refresh, CPU per statement (--pairs runs)")
    asyncio.run(main(ap.parse_args()))
