"""Soak: the campaign load at half the measured capacity for a long time, with two replicas of every service.

Runs the four services as two processes each (devstack `Stack.services_up(replicas=2)`, own schemas, topic
prefix and state folder) on the stack of the environment (`devstack up [--brokers 3]`), imports a generated city,
then:
1. measures capacity (unless --capacity is given): the first --measure-visits visits of a campaign are sent as fast
   as 96 connections go; capacity = those visits / (first request → every outbox drained and every consumer
   group at lag 0), i.e. the end-to-end rate the whole pipeline sustains, not just what the API accepts;
2. sends visits at --load (default 0.5) × capacity for --duration seconds (default 1800), spread over both visits
   replicas as a load balancer would. A campaign covers each family of the city once, so campaigns are looped:
   the next one is launched in the background while the current one is being recorded and the pacer moves on to
   it without a pause (every campaign is a new set of assignments over the same city, as a bureau runs a spring
   and an autumn campaign);
3. every --sample seconds prints the visits accepted in the interval, consumer lag per group (from the broker:
   end offsets − committed offsets), the age of the oldest unpublished outbox row and the unpublished rows per
   service, and the RSS of every process;
4. at the end prints RSS per process at the start of the load, after the warm-up (first 10 % of the duration, at
   least 60 s) and at the end, each service's RSS over the run with the campaign launch times, per launch how long
   its request took and how many seconds after its answer (its commit) the relay had published all of it, and
   verdicts: RSS growth to the end under 10 % (from the start of the load, and from the warm-up), and lag and
   outbox age flat, as numbers: median and max of the first and the last third of the samples after the warm-up
   and the least-squares slope per minute; flat = the trend over the run below half the mean plus a small allowance
   (1,000 messages of lag, 2 s of outbox age) and the last third's median at most 1.5 × the first third's plus that
   allowance. Lag is judged like with like
   (`bench.verdicts`): a launch's burst is planned load, so the lag between launches must be flat and each launch's
   drain time (its commit → every consumer group back to its level before it) must not grow from launch to launch;
   the lag over every sample, bursts included, and the raw series are printed too;
5. with --memory-debug, every service process dumps its memory (shared.memdebug) at the start of the load and at
   the end: glibc's free-but-held bytes, pymalloc's arenas and their live bytes, what a full collection frees.
Drops its schemas and topics afterwards (unless --keep).
Run: .venv/bin/python bench/soak.py [--duration 1800] [--scale 0.5] [--capacity N] [--load 0.5] [--memory-debug 1]
     [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.campaign import visit_jobs
from bench.verdicts import Lags, Launch, age_verdict, lag_verdict, pct, trend
from demo import citygen
from demo.__main__ import import_city, launch_campaign
from demo.client import Api, bureau_token, settled
from demo.recorder import Connection, Job
from shared import memdebug
from shared.db import service_database_url
from shared.devstack import ServiceProcess, Stack, StackInfo, ensure_up, state_dir
from shared.devstack.services import SERVICES
from shared.devstack.stack import components
from shared.testing.fixtures import drop_test_resources

RSS_GROWTH_TARGET = 0.10


@dataclass
class Load:
    """What the simulated teachers have sent so far."""

    visits: int = 0
    requests: int = 0
    failed: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


class Campaigns:
    """An endless supply of visit requests: campaign after campaign over the same city, the next launched early."""

    def __init__(self, visits: Api, rng: random.Random, single_share: float, database_url: str, schema: str) -> None:
        self.visits, self.rng, self.single_share = visits, rng, single_share
        self.database_url, self.schema = database_url, schema
        self.published: list[asyncio.Task[float | None]] = []  # per launch: seconds from its answer to published
        self.launched = 0
        self.launches: list[tuple[float, float]] = []  # (start, answer) of each launch request, monotonic
        self.pids: dict[str, int] = {}  # set once the load starts: RSS is noted at every later launch
        self.rss_at_launch: list[tuple[int, dict[str, int | None]]] = []  # (campaign, RSS before its launch)
        self._queue: list[Job] = []
        self._next: asyncio.Task[list[Job]] | None = None

    async def _launch(self) -> list[Job]:
        self.launched += 1
        if self.pids:
            self.rss_at_launch.append((self.launched, {label: rss_kb(pid) for label, pid in self.pids.items()}))
        started = time.monotonic()
        answered: list[float] = []

        def launched() -> None:  # the launch is committed: from now on its outbox rows wait for the relay alone
            answered.append(time.monotonic())
            self.published.append(asyncio.create_task(self._published()))

        _, assignments, checklist, starts_on = await launch_campaign(
            self.visits, f"soak campaign {self.launched}", launched
        )
        self.launches.append((started, answered[0]))
        return visit_jobs(self.rng, assignments, checklist, starts_on, self.single_share)[1]

    async def _published(self, timeout: float = 1800) -> float | None:
        """Seconds from the launch's answer (its commit) until every outbox row written before it is published: the
        relay's share of a launch's outbox age (the rows carry their transaction's start time, so their age also
        counts the launch transaction itself). None if that took longer than `timeout`."""
        t = time.monotonic()
        conn = await asyncpg.connect(self.database_url)
        try:
            mark = await conn.fetchval(f'SELECT max(id) FROM "{self.schema}".outbox')
            while mark is not None and await conn.fetchval(
                f'SELECT EXISTS (SELECT 1 FROM "{self.schema}".outbox WHERE id <= $1)', mark
            ):
                if time.monotonic() - t > timeout:
                    return None
                await asyncio.sleep(0.5)
        finally:
            await conn.close()
        return time.monotonic() - t

    async def start(self) -> None:
        self._queue = await self._launch()
        self._total = len(self._queue)

    async def take(self) -> Job | None:
        """The next request; launches the following campaign when half of this one is sent."""
        if self._next is None and len(self._queue) < self._total // 2:
            self._next = asyncio.create_task(self._launch())
        if not self._queue:
            assert self._next is not None
            self._queue = await self._next
            self._total, self._next = len(self._queue), None
        return self._queue.pop()

    async def close(self) -> None:
        if self._next is not None:
            with contextlib.suppress(Exception):
                await self._next
        for task in self.published:
            task.cancel()


async def send(
    ports: list[int],
    take: Callable[[], Awaitable[Job | None]],
    load: Load,
    clients: int,
    until: float,
    rate: float | None,
) -> None:
    """`clients` keep-alive connections over the visits replicas, at `rate` visits/s (None: as fast as they go),
    until `until` or until `take` has nothing more."""
    started = time.monotonic()
    scheduled = 0  # visits whose send time has been handed out

    async def client(i: int) -> None:
        nonlocal scheduled
        conn = Connection(f"http://127.0.0.1:{ports[i % len(ports)]}/api/v1")
        try:
            while time.monotonic() < until and (job := await take()) is not None:
                path, body, token, n = job.path, job.body(), job.token, len(job.records)
                if rate is not None:
                    due = started + scheduled / rate
                    scheduled += n
                    if due > time.monotonic():
                        await asyncio.sleep(due - time.monotonic())
                headers = {"Authorization": f"Bearer {token}"}
                if not job.live:
                    headers["Idempotency-Key"] = job.key
                t = time.perf_counter()
                for attempt in range(10):
                    try:
                        status, text = await conn.post(path, body, headers)
                    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                        status, text = 599, b"connection lost"
                    if status not in (502, 503, 504, 599):
                        break
                    await asyncio.sleep(0.2 * (attempt + 1))
                load.latencies_ms.append(1000 * (time.perf_counter() - t))
                load.requests += 1
                if status == 201:
                    load.visits += 1
                elif status == 200:
                    load.visits += orjson.loads(text)["stored"]
                else:
                    load.failed.append(f"{status} {text[:200]!r}")
        finally:
            conn.close()

    await asyncio.gather(*(client(i) for i in range(clients)))


def rss_kb(pid: int) -> int | None:
    """VmRSS of a process in kB (None once it has exited)."""
    with contextlib.suppress(OSError, StopIteration):
        return next(
            int(ln.split()[1]) for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("VmRSS:")
        )
    return None


async def memory_dumps(procs: list[ServiceProcess], timeout: float = 120) -> list[str]:
    """Signal every service process for the kit's memory dump (`shared.memdebug`, on with --memory-debug) and
    summarise what each wrote to its log: where its resident memory is, and what a full collection then freed."""
    sizes = {p.label: p.log.stat().st_size if p.log.exists() else 0 for p in procs}
    for p in procs:
        if pid := p.pid():
            os.kill(pid, signal.SIGUSR1)
    docs: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(docs) < len(procs) and time.monotonic() < deadline:
        await asyncio.sleep(1)
        for p in procs:
            if p.label in docs or not p.log.exists():
                continue
            with p.log.open("rb") as f:
                f.seek(sizes[p.label])
                for line in f:
                    if line.startswith(b'{"memory_debug"'):
                        docs[p.label] = orjson.loads(line)
    out = []
    for label, d in sorted(docs.items()):
        g, after, py = d.get("glibc", {}), d.get("after_collection", {}), d.get("pymalloc", {})
        out.append(
            f"  {label:<13} RSS {d['rss_kb'] / 1024:.0f} MB (anonymous {d['anon_kb'] / 1024:.0f}); glibc heap: in use "
            f"{g.get('in_use_kb', 0) / 1024:.0f} MB, free but held {g.get('free_kb', 0) / 1024:.0f} MB, mmapped "
            f"{g.get('mmap_kb', 0) / 1024:.0f} MB; pymalloc arenas {py.get('arenas_now', '?')} now / "
            f"{py.get('arenas_peak', '?')} at most (1 MiB each) holding {py.get('allocated_kb', 0) / 1024:.0f} MB of "
            f"live small objects and {py.get('available_kb', 0) / 1024:.0f} MB of free blocks; GC generations "
            f"{d['gc_generations']} objects, "
            f"collections {d['gc_collections']}; a full collection found {d['unreachable_found_by_full_collection']:,} "
            f"unreachable → RSS {after.get('rss_kb', 0) / 1024:.0f} MB, glibc free "
            f"{after.get('glibc', {}).get('free_kb', 0) / 1024:.0f} MB"
            + (f"; after malloc_trim(0) RSS {d['after_trim']['rss_kb'] / 1024:.0f} MB" if "after_trim" in d else "")
        )
        if d.get("grown"):
            out += [f"      {x}" for x in d["grown"][:8]]
    return out or ["  (no dump found in the logs)"]


def processes(procs: list[ServiceProcess]) -> dict[str, int]:
    """Label → pid of every service replica and of the infrastructure processes devstack runs here."""
    out = {p.label: p.pid() or 0 for p in procs}
    for c in components():
        nodes = getattr(c, "nodes", [c])
        for n in nodes:
            pid = n.pid()
            if pid:
                out[n.name if n.name != "postgres" else "postgres (postmaster)"] = pid
    return out


async def outbox_state(conns: dict[str, asyncpg.Connection], schemas: dict[str, str]) -> dict[str, tuple[int, float]]:
    """Per service (a connection to its own database each): (unpublished outbox rows, age in seconds of the oldest
    one; 0 when none)."""
    out = {}
    for name, schema in schemas.items():
        row = await conns[name].fetchrow(
            f"SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age "
            f'FROM "{schema}".outbox'
        )
        out[name] = (int(row["n"]), float(row["age"]))
    return out


@dataclass
class Sample:
    """One row of the time series."""

    t: float
    visits: int
    lag: dict[str, int | None]
    outbox: dict[str, tuple[int, float]]
    rss: dict[str, int | None]


def launch_times(campaigns: Campaigns, t0: float) -> list[Launch]:
    """Each launch's request, commit (its answer) and last event published (the relay's share, `inf` if unknown),
    in seconds into the load."""
    out = []
    for (began, ended), published in zip(campaigns.launches, campaigns.published, strict=False):
        done = published.done() and not published.cancelled() and not published.exception()
        relay = published.result() if done else None
        out.append((began - t0, ended - t0, ended - t0 + relay if relay is not None else float("inf")))
    return out


def mb(kb: int | None) -> str:
    return "   -  " if kb is None else f"{kb / 1024:6.0f}"


def fmt_lag(lag: dict[str, int | None], prefix: str) -> str:
    return " ".join(f"{g.removeprefix(prefix)}={'?' if v is None else v}" for g, v in sorted(lag.items()))


async def sampler(
    stack: Stack,
    conns: dict[str, asyncpg.Connection],
    schemas: dict[str, str],
    pids: dict[str, int],
    load: Load,
    every: float,
    samples: list[Sample],
    stop: asyncio.Event,
    prefix: str,
    t0: float,
) -> None:
    """Every `every` seconds: one Sample, printed as a line."""
    last_visits, last_t = load.visits, time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            return  # a partial last interval would skew the trends
        now = time.monotonic()
        lag = await asyncio.to_thread(stack.consumer_lag)
        outbox = await outbox_state(conns, schemas)
        rss = {label: rss_kb(pid) for label, pid in pids.items()}
        s = Sample(now - t0, load.visits, lag, outbox, rss)
        samples.append(s)
        rate = (load.visits - last_visits) / max(now - last_t, 1e-9)
        last_visits, last_t = load.visits, now
        total_rss = sum(v for k, v in rss.items() if v and "#" in k and not k.startswith("kafka"))
        print(
            f"  {s.t:6.0f}s {rate:5.0f} visits/s  lag {fmt_lag(lag, prefix)}  outbox age "
            + " ".join(f"{n[:3]}={a:.1f}s/{c}" for n, (c, a) in outbox.items())
            + f"  services RSS {total_rss / 1024:.0f} MB",
            flush=True,
        )


def series(samples: list[Sample], pick: Any) -> list[tuple[float, float]]:
    return [(s.t, float(pick(s))) for s in samples]


async def main(args: argparse.Namespace) -> None:
    load_start = os.getloadavg()
    info: StackInfo = ensure_up()
    run = uuid.uuid4().hex[:8]
    prefix, schemas = f"sk{run}.", {n: f"sk_{run}_{n}" for n in SERVICES}
    env = {
        **info.env(),
        "HSS_TOPIC_PREFIX": prefix,
        "LOG_LEVEL": "WARNING",
        **({memdebug.VARIABLE: args.memory_debug} if args.memory_debug else {}),
        **{f"{n.upper()}_DB_SCHEMA": s for n, s in schemas.items()},
    }
    stack = Stack.on_free_ports(
        state_dir() / f"soak-{run}",
        database_url=info.database_url,
        kafka_bootstrap=info.kafka_bootstrap,
        service_env=env,
    )
    t = time.monotonic()
    procs = await asyncio.to_thread(stack.services_up, args.replicas)
    print(
        f"run {run}: {args.replicas} replicas of each service up in {time.monotonic() - t:.0f}s on "
        f"{info.brokers} Kafka broker(s); logs in {stack.state / 'logs'}",
        flush=True,
    )
    holders = ", ".join(f"{h.service}→{h.label}" for h in await asyncio.to_thread(stack.relay_holders))
    print(f"relay locks: {holders}")
    first = {p.name: p for p in procs if p.replica == 1}
    token = bureau_token()
    committees = Api(first["committees"].address, token, repeatable=True)
    visits = Api(first["visits"].address, token)
    visit_ports = [p.port for p in procs if p.name == "visits"]
    # Each service process runs in its own database (devstack, as deployed).
    dbs = {n: service_database_url(info.database_url, n) for n in SERVICES}
    conns = {n: await asyncpg.connect(url) for n, url in dbs.items()}
    rng = random.Random(args.seed)
    campaigns = Campaigns(visits, rng, args.single_share, dbs["visits"], schemas["visits"])
    try:
        city = citygen.generate(scale=args.scale, seed=args.seed)
        t = time.monotonic()
        await import_city(committees, city)
        await settled(procs, timeout=1800)
        print(
            f"city (scale {args.scale}): {len(city.staff):,} staff, {len(city.students):,} students, "
            f"{len(city.families):,} families; imported and consumed in {time.monotonic() - t:.0f}s",
            flush=True,
        )
        await campaigns.start()
        await settled(procs, timeout=1800)
        print(f"campaign 1 launched: {campaigns._total:,} requests", flush=True)

        capacity = args.capacity
        if not capacity:
            burst = Load()
            t = time.monotonic()
            left = args.measure_visits

            async def first_visits() -> Job | None:
                nonlocal left
                job = await campaigns.take() if left > 0 else None
                left -= len(job.records) if job else 0
                return job

            await send(visit_ports, first_visits, burst, 96, float("inf"), None)
            t_sent = time.monotonic()
            await settled(procs, timeout=1800)
            capacity = burst.visits / (time.monotonic() - t)
            print(
                f"capacity: {burst.visits:,} visits as fast as 96 connections go: accepted at "
                f"{burst.visits / (t_sent - t):,.0f}/s, all consumed {time.monotonic() - t_sent:.0f}s after the last "
                f"answer → {capacity:,.0f} visits/s end to end ({len(burst.failed)} failed requests)",
                flush=True,
            )
        rate = args.load * capacity
        print(f"soak: {rate:,.0f} visits/s ({args.load:.0%} of {capacity:,.0f}) for {args.duration:.0f}s", flush=True)

        pids = processes(procs)
        campaigns.pids = pids
        load = Load()
        samples: list[Sample] = []
        stop = asyncio.Event()
        t0 = time.monotonic()
        rss_start = {label: rss_kb(pid) for label, pid in pids.items()}
        if args.memory_debug:
            print("memory of every service process at the start of the load (shared.memdebug):", flush=True)
            print("\n".join(await memory_dumps(procs)), flush=True)
            rss_start = {label: rss_kb(pid) for label, pid in pids.items()}
        sampling = asyncio.create_task(
            sampler(stack, conns, schemas, pids, load, args.sample, samples, stop, prefix, t0)
        )
        await send(visit_ports, campaigns.take, load, args.clients, t0 + args.duration, rate)
        t_end = time.monotonic()
        stop.set()
        await sampling
        rss_end = {label: rss_kb(pid) for label, pid in pids.items()}
        t = time.monotonic()
        await settled(procs, timeout=1800)
        drained = time.monotonic() - t

        warm_at = max(60.0, 0.1 * args.duration)
        warm_sample = next((s for s in samples if s.t >= warm_at), samples[0] if samples else None)
        rss_warm = warm_sample.rss if warm_sample else rss_start
        after = [s for s in samples if s.t >= warm_at] or samples
        lag_series = series(after, lambda s: sum(v or 0 for v in s.lag.values()))
        age_series = series(after, lambda s: max(a for _, a in s.outbox.values()))
        lag_trend, age_trend = trend(lag_series, 1000), trend(age_series, 2.0)
        lags: list[Lags] = [(x.t, {g: float(v or 0) for g, v in x.lag.items()}) for x in samples]
        lag = lag_verdict(lags, launch_times(campaigns, t0), warm_at)
        age = age_verdict(series(samples, lambda s: max(a for _, a in s.outbox.values())), lag.drains, warm_at)
        elapsed = t_end - t0
        lat = load.latencies_ms
        out = [
            f"\nsoak {run}: {load.visits:,} visits in {elapsed:.0f}s = {load.visits / elapsed:,.0f}/s "
            f"(target {rate:,.0f}/s), {load.requests:,} requests, {len(load.failed)} failed, "
            f"{campaigns.launched} campaigns launched; latency p50/p99 {pct(lat, 0.5):.0f}/{pct(lat, 0.99):.0f} ms; "
            f"drained {drained:.0f}s after the load stopped",
            *(f"  failed: {f}" for f in load.failed[:3]),
            f"RSS per process (MB): at the start of the load / after the warm-up ({warm_at:.0f}s) / at the end; "
            f"growth warm-up → end (target < {RSS_GROWTH_TARGET:.0%})",
        ]
        growth_ok = start_ok = True
        for label in pids:
            a, w, e = rss_start.get(label), rss_warm.get(label), rss_end.get(label)
            g = (e - w) / w if e and w else None
            if g is not None and "#" in label and not label.startswith("kafka"):
                growth_ok &= g < RSS_GROWTH_TARGET
                start_ok &= a is not None and e is not None and (e - a) / a < RSS_GROWTH_TARGET
            out.append(
                f"  {label:<13} {mb(a)} / {mb(w)} / {mb(e)}   "
                + ("  -" if g is None else f"{g:+.1%}" + (" (start → end " + f"{(e - a) / a:+.1%})" if a and e else ""))
            )
        step = max(1, len(samples) // 12)
        shown = samples[::step]
        out.append("RSS over the run (MB) at " + ", ".join(f"+{x.t:.0f}s" for x in shown))
        out += [
            f"  {label:<13} " + " ".join(mb(x.rss.get(label)) for x in shown)
            for label in pids
            if "#" in label and not label.startswith("kafka")
        ]
        out.append(
            "campaign launches (start, seconds until the launch was answered, i.e. committed): "
            + ", ".join(f"+{a - t0:.0f}s ({b - a:.0f}s)" for a, b in campaigns.launches)
        )
        # Each launch writes one event per family at once: the visits outbox's age rises until the relay has
        # published them. How long that took for each launch (first sample after it with the age back under 5 s).
        # How much of that is the relay: seconds from the launch's answer (its commit) to its last event published.
        drains = []
        for (began, ended), published in zip(campaigns.launches, campaigns.published, strict=False):
            back = next((x.t for x in samples if x.t > ended - t0 and x.outbox["visits"][1] < 5.0), None)
            peak = max((x.outbox["visits"][1] for x in samples if began - t0 <= x.t <= (back or x.t)), default=0.0)
            relay = (
                published.result()
                if published.done() and not published.cancelled() and not published.exception()
                else None
            )
            drains.append(
                f"+{began - t0:.0f}s: launch request {ended - began:.0f}s, published "
                + ("?" if relay is None else f"{relay:.0f}s")
                + f" after its answer; peak age {peak:.0f}s, "
                + ("not drained" if back is None else f"drained by +{back:.0f}s")
            )
        out.append("visits outbox after each launch: " + "; ".join(drains))
        # The services' RSS when each campaign after the first was launched (the first launches set the high-water
        # mark of a launch and of a campaign's load), then at the end: flat from the 2nd campaign on?
        later = [(k, r) for k, r in campaigns.rss_at_launch if k >= 2]
        flat_ok = True
        if later:
            out.append(
                "RSS (MB) when campaign "
                + ", ".join(str(k) for k, _ in later)
                + " was launched, and at the end; growth "
                f"from campaign {later[0][0]} to the end (target < {RSS_GROWTH_TARGET:.0%})"
            )
            for label in pids:
                if "#" not in label or label.startswith("kafka"):
                    continue
                base, end = later[0][1].get(label), rss_end.get(label)
                g = (end - base) / base if base and end else None
                if g is not None:
                    flat_ok &= g < RSS_GROWTH_TARGET
                out.append(
                    f"  {label:<13} "
                    + " ".join(mb(r.get(label)) for _, r in later)
                    + f" {mb(end)}   "
                    + ("  -" if g is None else f"{g:+.1%}")
                )
        out += [
            f"  services' RSS growth from the start of the load under {RSS_GROWTH_TARGET:.0%}: "
            + ("ok" if start_ok else "MISSED"),
            f"  services' RSS growth after the warm-up under {RSS_GROWTH_TARGET:.0%}: "
            + ("ok" if growth_ok else "MISSED"),
            f"  services' RSS growth from the 2nd campaign's launch to the end under {RSS_GROWTH_TARGET:.0%}: "
            + ("-" if not later else "ok" if flat_ok else "MISSED"),
            "consumer lag between launches (messages, all groups, after the warm-up, outside each launch's window: "
            "from its request to the first sample with every group back to its level before it): "
            + lag.between.describe("", ",.0f"),
            "each launch's drain (its commit → every group back to its level before the launch): "
            + "; ".join(
                f"+{d.started:.0f}s (committed +{d.committed:.0f}s, published +{d.published:.0f}s) peak "
                f"{d.peak:,.0f}, drained "
                + (
                    f"in {d.seconds:.0f}s"
                    if d.seconds is not None
                    else "not by the end of the run (not judged: committed too late)"
                    if d.cut
                    else "NOT (before the next launch or the end)"
                )
                for d in lag.drains
            )
            + ("" if lag.drains else "(no launch during the load)")
            + " → not growing from launch to launch: "
            + ("ok" if lag.drains_ok else "MISSED"),
            "consumer lag flat (between launches flat and drains not growing): " + ("ok" if lag.ok else "MISSED"),
            "  for reference, every sample after the warm-up, launch bursts included: "
            + lag_trend.describe("", ",.0f"),
            "  raw lag series (seconds into the load: total messages): "
            + " ".join(f"{t:.0f}:{sum(v.values()):.0f}" for t, v in lags),
            "oldest unpublished outbox row (worst service, after the warm-up) between launches (outside the lag "
            "verdict's launch windows): " + age.between.describe("s", ".1f"),
            "each launch's peak outbox age: "
            + ", ".join(f"{p:.0f}s" for p in age.peaks)
            + " → not growing from launch to launch: "
            + ("ok" if age.peaks_ok else "MISSED"),
            "outbox age flat (between launches flat and peaks not growing): " + ("ok" if age.ok else "MISSED"),
            "  for reference, every sample after the warm-up, launch bursts included: "
            + age_trend.describe("s", ".1f"),
            f"load average at start {load_start[0]:.2f}, at the end {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs, "
            "a machine shared with other work: rates and latencies are noisy)",
        ]
        if args.memory_debug:
            out.append("memory of every service process at the end (shared.memdebug):")
            out += await memory_dumps(procs)
        print("\n".join(out), flush=True)
    finally:
        await campaigns.close()
        for conn in conns.values():
            await conn.close()
        await committees.close()
        await visits.close()
        await asyncio.to_thread(stack.services_down)
        if args.keep:
            print(f"kept schemas {', '.join(sorted(schemas.values()))} and topics {prefix}*; logs in {stack.state}")
        else:
            await drop_test_resources(info, prefix, set(schemas.values()))
            await asyncio.to_thread(stack.remove)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=1800, help="seconds of load at the soak rate (default 30 min)")
    ap.add_argument("--scale", type=float, default=0.5, help="share of the full city (campaigns are looped)")
    ap.add_argument("--capacity", type=float, default=0, help="visits/s end to end; 0 = measure it first")
    ap.add_argument("--measure-visits", type=int, default=30_000, help="visits of the capacity burst")
    ap.add_argument("--load", type=float, default=0.5, help="share of the capacity to soak at")
    ap.add_argument("--replicas", type=int, default=2, help="processes per service")
    ap.add_argument("--clients", type=int, default=48, help="concurrent connections of the simulated teachers")
    ap.add_argument("--sample", type=float, default=10, help="seconds between samples")
    ap.add_argument("--single-share", type=float, default=0.25, help="share of teachers recording visit by visit")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--memory-debug",
        default="",
        metavar="1|trace[:frames]",
        help="HSS_MEMORY_DEBUG for the services; at the end each process dumps its memory (shared.memdebug)",
    )
    ap.add_argument("--keep", action="store_true", help="keep schemas, topics and logs afterwards")
    asyncio.run(main(ap.parse_args()))
