"""A small city run through the four services as real processes (the demo's steps, with fixed inputs)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from demo import citygen
from demo.__main__ import cooperation, department_answers, import_city, run_campaign
from demo.client import CITY, Api, bureau_token, settled
from services.outreach.settings import Rules
from services.reporting.settings import ReportingSettings
from services.reporting.usecases.consistency import run_check
from shared.auth import issue_token
from shared.contracts.common import Category, Severity
from shared.db import lock_key, service_database_url
from shared.devstack import ServiceProcess, StackInfo, state_dir
from shared.devstack.component import port_open, wait_until
from shared.devstack.idp import IdentityProvider
from shared.devstack.services import SERVICES
from shared.events import registry
from shared.inbox import Facts, subscribed_types
from shared.testing.fixtures import caught_up, drop_test_resources, events_under, free_port, wait_for

SCALE, SEED = 0.004, 11
SETTLE_SECONDS = 300  # the scripted city settles in well under a minute, even after a 20 s broker outage
# Which guardians enrol in parent schools depends on the order of service-generated ids (the demo's cooperation
# step): their number differs between undisturbed runs.
TIMING_DEPENDENT = {"committees.parent_school.attendance_recorded.v1"}


@dataclass
class CityRun:
    """The four services of one run as processes (`replicas` of each), each service with its own schema and topic
    prefix. The scripted clients call replica `api_replica[name]` (0 unless a fault test needs another)."""

    stack: StackInfo
    run_id: str
    replicas: int = 1
    procs: dict[str, list[ServiceProcess]] = field(default_factory=dict)
    api_replica: dict[str, int] = field(default_factory=dict)
    retired: list[ServiceProcess] = field(default_factory=list)  # killed for good; not waited for
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the topic replication of a broker cluster

    @property
    def home(self) -> Path:
        return state_dir() / f"e2e-{self.run_id}"

    def schema(self, name: str) -> str:
        return f"e_{self.run_id}_{name}"

    def database(self, name: str) -> str:
        """The URL of `name`'s own database (its process runs there, as deployed: one database per service)."""
        return service_database_url(self.stack.database_url, name)

    def start(self, *, together: bool = False) -> None:
        """Start every replica: one after the other, or all at once (`together`, e.g. on an empty database)."""
        for name in SERVICES:
            for _ in range(self.replicas):
                self.procs.setdefault(name, []).append(self._process(name))
        env = self._env()
        for procs in self.procs.values():
            for proc in procs:
                proc.env = env
        everyone = self.live()
        if together:
            with ThreadPoolExecutor(len(everyone)) as pool:
                for future in [pool.submit(proc.start) for proc in everyone]:
                    future.result()
        else:
            for proc in everyone:
                proc.start()

    def _process(self, name: str) -> ServiceProcess:
        """A new replica of `name` on a free port (its own pid file and log: <home>/<name>-<n>/)."""
        n = len(self.procs.get(name, [])) + 1
        return ServiceProcess(self.home / f"{name}-{n}", name, free_port(), {})

    def label(self, proc: ServiceProcess) -> str:
        """`visits#2` for the second replica of visits."""
        return f"{proc.name}#{self.procs[proc.name].index(proc) + 1}"

    def _env(self) -> dict[str, str]:
        urls = {name: self.url(name) for name in SERVICES}
        return {
            **self.stack.env(),
            "HSS_ENV": "test",
            "HSS_TOPIC_PREFIX": f"e{self.run_id}.",
            "REPORTING_VISITS_URL": urls["visits"],
            "REPORTING_OUTREACH_URL": urls["outreach"],
            "REPORTING_COMMITTEES_URL": urls["committees"],
            "LOG_LEVEL": "WARNING",
            **{f"{n.upper()}_DB_SCHEMA": self.schema(n) for n in SERVICES},
            **{f"{n.upper()}_TOPIC_PARTITIONS": "3" for n in SERVICES},
            **self.extra_env,
        }

    def add_replica(self, name: str) -> ServiceProcess:
        """Start one more replica of `name` (a new process joining its consumer groups and the relay election)."""
        proc = self._process(name)
        proc.env = self._env()
        self.procs[name].append(proc)
        proc.start()
        return proc

    @staticmethod
    def crash(proc: ServiceProcess) -> None:
        """Kill -9 a replica and wait until its port is free again (its last thread may still be exiting)."""
        proc.kill()
        wait_until(lambda: not port_open("127.0.0.1", proc.port), 10, f"{proc.name}'s port", lambda: True)

    def retire(self, proc: ServiceProcess) -> None:
        """Kill -9 a replica that stays dead (the others carry on)."""
        self.crash(proc)
        self.retired.append(proc)

    def live(self) -> list[ServiceProcess]:
        """Every replica that is meant to be running."""
        return [p for procs in self.procs.values() for p in procs if p not in self.retired]

    def url(self, name: str) -> str:
        return self.procs[name][self.api_replica.get(name, 0)].address

    async def stop(self) -> None:
        for proc in self.live():
            proc.stop()
        await drop_test_resources(self.stack, f"e{self.run_id}.", {self.schema(n) for n in SERVICES})
        shutil.rmtree(self.home, ignore_errors=True)


def in_bureau_order(assignments: list[dict[str, Any]], student_no: dict[str, str]) -> list[dict[str, Any]]:
    """The assignments, and each one's children, in the order of the bureau's student numbers: the same in every
    run, whatever ids the services gave them."""
    arranged = [a | {"student_ids": sorted(a["student_ids"], key=student_no.__getitem__)} for a in assignments]
    return sorted(arranged, key=lambda a: [student_no[s] for s in a["student_ids"]])


async def student_numbers(committees: Api) -> dict[str, str]:
    """The bureau's student number of each student id (ids are the service's own, different in every run)."""
    return {s["student_id"]: s["student_no"] for s in await committees.every("/students")}


Fault = Callable[[CityRun], Awaitable[None]]


async def run_city(
    run: CityRun, *, during_import: Fault | None = None, during_campaign: Fault | None = None
) -> dict[str, Any]:
    """Import, cooperation structure, campaign, department answers; returns what went in and what came out.
    `during_import` and `during_campaign` run alongside those steps (a fault drill's faults)."""
    rng = random.Random(SEED)
    token = bureau_token()
    committees = Api(run.url("committees"), token, repeatable=True)
    visits = Api(run.url("visits"), token)
    outreach = Api(run.url("outreach"), token)
    reporting = Api(run.url("reporting"), token)
    try:
        city = citygen.generate(scale=SCALE, seed=SEED)
        import_task = asyncio.create_task(import_city(committees, city))
        if during_import is not None:
            await during_import(run)
        await import_task
        await cooperation(committees, city, rng)
        await settled(run.live(), timeout=SETTLE_SECONDS)
        student_no = await student_numbers(committees)
        campaign_task = asyncio.create_task(
            run_campaign(
                visits,
                random.Random(SEED),  # its own generator: cooperation's draws depend on the services' ids
                single_share=0.3,
                keep_records=True,
                arrange=lambda assignments: in_bureau_order(assignments, student_no),
                habits=False,  # which teacher a family gets depends on the services' ids: not comparable
            )
        )
        if during_campaign is not None:
            await during_campaign(run)
        stats = await campaign_task
        await settled(run.live(), timeout=SETTLE_SECONDS)
        acked = await department_answers(run.url("outreach"))
        await settled(run.live(), timeout=SETTLE_SECONDS)
        cases = await outreach.every("/cases")
        referrals = await outreach.every("/referrals")
        progress = await visits.get(f"/campaigns/{stats['campaign_id']}/progress", by="district")
        for _ in range(60):  # reporting refreshes its read model every second
            summary = await reporting.get("/children", org_path=CITY, campaign_id=stats["campaign_id"])
            figures = summary["self"]["figures"]
            seen = figures["visits"]["completed"] + figures["visits"]["missed"]
            if seen == len(stats["records"]) and figures["cases"]["opened"] == len(cases):
                break
            await asyncio.sleep(1)
        return {
            "stats": stats,
            "acked": acked,
            "cases": cases,
            "referrals": referrals,
            "progress": progress,
            "summary": summary,
            "city": city,
            "events": await outbox_counts(run),
            "student_no": student_no,
        }
    finally:
        for api in (committees, visits, outreach, reporting):
            await api.close()


def expected_outcomes(records: list[dict[str, Any]]) -> tuple[set[str], set[tuple[str, str, str]]]:
    """From the findings that were sent, with outreach's configured rules: the children who must have a case,
    and the (child, department, category) referrals (one per category: two categories of a child that go to
    the same department are two requests). A child's findings arrive in order (one visit per family, keyed by
    child); a finding before the child's first qualifying one has no case to join and so refers nowhere."""
    rules = Rules()
    rank = list(Severity).index
    children: set[str] = set()
    referrals: set[tuple[str, str, str]] = set()
    for record in records:
        for f in record.get("findings", []):
            cat, sev = Category(f["category"]), Severity(f["severity"])
            if cat in rules.special_group_categories or rank(sev) >= rank(rules.open_case_min_severity):
                children.add(f["student_id"])
            if f["student_id"] in children and rank(sev) >= rank(rules.referral_min_severity):
                referrals |= {(f["student_id"], d.value, cat.value) for d in rules.referral_departments.get(cat, [])}
    return children, referrals


def consuming_groups(*, inbox: bool = True) -> dict[str, dict[str, frozenset[str]]]:
    """Per service, its consumer groups (those keeping inbox rows, or with `inbox=False` those keeping none: the
    directory copies) and the event types each applies (read from the services' own specs)."""
    from services.committees.app import build_spec as committees_spec
    from services.committees.settings import Settings as CommitteesSettings
    from services.outreach.app import build_spec as outreach_spec
    from services.outreach.settings import OutreachSettings
    from services.reporting.app import build_spec as reporting_spec
    from services.reporting.settings import ReportingSettings
    from services.visits.app import build_spec as visits_spec
    from services.visits.settings import VisitsSettings

    specs = {
        "committees": committees_spec(CommitteesSettings()),
        "visits": visits_spec(VisitsSettings()),
        "outreach": outreach_spec(OutreachSettings()),
        "reporting": reporting_spec(ReportingSettings()),
    }
    return {
        name: {
            group: subscribed_types(handlers)
            for group, handlers in spec.consumers.items()
            if (not isinstance(handlers, Facts)) is inbox  # a copying subscription keeps no inbox rows
        }
        for name, spec in specs.items()
    }


async def written_events(run: CityRun) -> dict[uuid.UUID, str]:
    """Every event the four services wrote (id → type), once every outbox is empty: the relays delete what Kafka
    acknowledged, so the run's topics then hold all of them (a re-sent event once)."""
    conns = {n: await asyncpg.connect(run.database(n)) for n in SERVICES}
    try:

        async def waiting() -> dict[str, int]:
            counts = {n: await c.fetchval(f'SELECT count(*) FROM "{run.schema(n)}".outbox') for n, c in conns.items()}
            return {n: c for n, c in counts.items() if c}

        for _ in range(600):
            if not await waiting():
                break
            await asyncio.sleep(0.2)
        assert not await waiting(), f"outbox rows never published: {await waiting()}"
    finally:
        for conn in conns.values():
            await conn.close()
    events = await events_under(run.stack.kafka_bootstrap, f"e{run.run_id}.")
    return {uuid.UUID(event_id): event["type"] for event_id, event in events.items()}


async def outbox_counts(run: CityRun) -> Counter[str]:
    """How many events of each type the four services wrote to their outboxes."""
    return Counter((await written_events(run)).values())


# The directory copy's tables and columns that must equal committees' own.
COPIED = {
    "students": "student_id, class_id, org_path, family_id, active",
    "staff": "staff_id, org_path, roles, class_ids, head_class_id, active",
}


async def assert_every_event_applied_once(run: CityRun) -> dict[str, int]:
    """Zero lost events: every event any service wrote to its outbox was published, and every consumer group
    applied exactly the events of the types it handles (its inbox holds their ids: none missing, none foreign).
    The inbox keys on (group, event id), so nothing is applied twice; the counts by type are checked against an
    undisturbed run by `assert_same_events_as`. Returns the number of events each group applied."""
    outbox = await written_events(run)
    conns = {n: await asyncpg.connect(run.database(n)) for n in SERVICES}
    try:
        applied: dict[str, int] = {}
        for name, groups in consuming_groups().items():
            for group, types in groups.items():
                want = {event_id for event_id, kind in outbox.items() if kind in types}
                got = {
                    r["event_id"]
                    for r in await conns[name].fetch(
                        f'SELECT event_id FROM "{run.schema(name)}".inbox WHERE consumer = $1', group
                    )
                }
                lost = Counter(outbox[e] for e in want - got)
                assert not lost, f"{group} never applied {sum(lost.values())} events: {dict(lost)}"
                assert got <= want, f"{group} applied {len(got - want)} events that no outbox holds"
                applied[group] = len(got)
        # The directory copies keep no inbox (redelivery writes nothing there): every event of their topics taken
        # in (offsets committed to the end), and each copy holds what committees holds.
        for name, groups in consuming_groups(inbox=False).items():
            for group, types in groups.items():
                topics = [f"e{run.run_id}.{t}" for t in registry.topics_for(sorted(types))]
                taken_in = partial(caught_up, run.stack.kafka_bootstrap, f"e{run.run_id}.{group}", topics)
                await wait_for(taken_in, timeout=30)  # offsets are committed just after a poll's transactions
                for table, columns in COPIED.items():
                    source = await conns["committees"].fetch(
                        f'SELECT {columns} FROM "{run.schema("committees")}".{table} ORDER BY 1'
                    )
                    copied = await conns[name].fetch(f'SELECT {columns} FROM "{run.schema(name)}".{table} ORDER BY 1')
                    assert [tuple(r) for r in copied] == [tuple(r) for r in source], f"{group}: {table} differ"
                applied[group] = sum(1 for kind in outbox.values() if kind in types)
        return applied
    finally:
        for conn in conns.values():
            await conn.close()


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The figures that must not depend on timing: per unit, counts of everything (no durations)."""
    out = {}
    for unit in [summary["self"], *summary["children"]]:
        f = unit["figures"]
        out[unit["org_path"]] = {
            "families": f["families"],
            "teachers": f["teachers"],
            "visits": f["visits"],
            "findings": f["findings"]["by_category_severity"],
            "special_groups": f["special_groups"],
            "cases": {k: f["cases"][k] for k in ("opened", "open", "closed")},
            "referrals": f["referrals"],
            "structure": {k: v for k, v in f["structure"].items()}
            | {"lecturer_group": _lecturer_group(f["structure"]["lecturer_group"])},
        }
    return out


def _lecturer_group(group: dict[str, Any]) -> dict[str, Any]:
    """Lecturer ids are made by the service (they differ between runs): the top lecturers' counts, not their ids."""
    return group | {"top_lecturers": sorted(group["top_lecturers"].values())}


def assert_cases_and_referrals_follow_the_findings(out: dict[str, Any]) -> None:
    """Cases exactly for the children with qualifying findings, one open each; referrals exactly as mapped."""
    children, referrals = expected_outcomes(out["stats"]["records"])
    assert out["stats"]["rejected"] == 0
    assert len(children) > 5, "the scripted city must produce qualifying findings"
    cases = out["cases"]
    by_child = Counter(c["student_id"] for c in cases if c["state"] != "closed")
    assert set(by_child) == children
    assert max(by_child.values()) == 1, "one open case per child"
    case_child = {c["case_id"]: c["student_id"] for c in cases}
    got = {(case_child[r["case_id"]], r["department"], r["category"]) for r in out["referrals"]}
    assert got == referrals
    assert len(out["referrals"]) == len(referrals), "one referral per child, department and category"
    assert out["acked"] == sum(1 for _, d, _ in referrals if d == "civil_affairs")


async def assert_reporting_equals_the_owners(run: CityRun, out: dict[str, Any]) -> None:
    """Reporting's figures equal what the visits and outreach services hold, per district and for the city."""
    stats, summary, progress = out["stats"], out["summary"], out["progress"]
    city = summary["self"]["figures"]
    findings = sum(len(r.get("findings", [])) for r in stats["records"])
    completed = sum(1 for r in stats["records"] if r["status"] == "completed")
    assert city["visits"]["completed"] == completed == progress["totals"]["completed"]
    assert city["visits"]["missed"] == len(stats["records"]) - completed == progress["totals"]["missed"]
    assert city["findings"]["total"] == findings
    assert city["cases"]["opened"] == len(out["cases"])
    assert city["families"]["assigned"] == stats["assignments"] == progress["totals"]["assigned"]
    by_district = {u["org_path"]: u for u in progress["units"]}
    for child in summary["children"]:
        assert child["figures"]["visits"]["completed"] == by_district[child["org_path"]]["completed"]
    settings = ReportingSettings(
        database_url=run.database("reporting"),
        db_schema=f"e_{run.run_id}_reporting",
        visits_url=run.url("visits"),
        outreach_url=run.url("outreach"),
        committees_url=run.url("committees"),
    )
    report = await run_check(
        settings, "/620400", stats["campaign_id"], issue_token(role="bureau_admin", org_path="/620400")
    )
    assert report.unavailable == []
    assert report.compared > 20
    assert report.diffs == []


def scripted(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The visit records the scripted teachers sent, with the bureau's student numbers for the service's ids."""
    no = out["student_no"]
    return [
        {k: v for k, v in r.items() if k != "assignment_id"}
        | {"findings": [f | {"student_id": no[f["student_id"]]} for f in r.get("findings", [])]}
        for r in out["stats"]["records"]
    ]


def assert_same_city_as(out: dict[str, Any], calm: dict[str, Any]) -> None:
    """The same scripted city and campaign as an undisturbed run: every reporting figure per district and for the
    city, and the number of events of each type the services wrote (an event written twice, e.g. by a request or
    a reaction applied twice, or one never written, shows here)."""
    assert scripted(out) == scripted(calm), "the scripted campaign must be the same"
    figures, calm_figures = headline(out["summary"]), headline(calm["summary"])
    for unit in (figures, calm_figures):
        for f in unit.values():
            del f["structure"]["attendance"]
    assert figures == calm_figures
    events = {t: n for t, n in out["events"].items() if t not in TIMING_DEPENDENT}
    assert events == {t: n for t, n in calm["events"].items() if t not in TIMING_DEPENDENT}


async def assert_exact_outcome(run: CityRun, out: dict[str, Any], calm: dict[str, Any]) -> None:
    """Everything a fault must not change: cases and referrals exactly as the findings call for, reporting equal
    to the owners' data, every event applied once by every group, the same city as an undisturbed run."""
    assert_cases_and_referrals_follow_the_findings(out)
    await assert_reporting_equals_the_owners(run, out)
    await assert_every_event_applied_once(run)
    assert_same_city_as(out, calm)


@pytest.fixture(scope="session")
async def undisturbed(stack: StackInfo, idp: IdentityProvider) -> AsyncIterator[tuple[CityRun, dict[str, Any]]]:
    """One undisturbed run of the scripted city on the shared stack, the yardstick for every fault run. Its services
    accept the local identity provider's tokens too (the frontends' OIDC sign-in), dev tokens as in any test."""
    run = CityRun(stack, "u" + uuid.uuid4().hex[:8], extra_env=idp.service_env())
    await asyncio.to_thread(run.start)
    try:
        yield run, await run_city(run)
    finally:
        await run.stop()


async def query(run: CityRun, sql: str, *args: Any, service: str | None = None) -> Any:
    """One value from `service`'s database (fault drills watch the services' own tables to time a fault), or from
    the cluster's (its views of every database: pg_stat_activity, pg_locks)."""
    conn = await asyncpg.connect(run.database(service) if service else run.stack.database_url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def metric(proc: ServiceProcess, name: str, **labels: str) -> float:
    """Sum of a metric's samples with these labels on one replica (0 when it does not answer)."""
    page = await asyncio.to_thread(proc.get, "/metrics") or ""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith(name + "{") and all(w in line for w in want)
    )


async def until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 120, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
    return result


async def relay_lock_ports(run: CityRun, name: str, conn: asyncpg.Connection | None = None) -> set[int]:
    """Client ports of the database sessions holding `name`'s relay advisory lock (from pg_locks), asked on `conn`
    or on a connection of its own."""
    key = lock_key(f"relay:{run.schema(name)}") & 0xFFFFFFFFFFFFFFFF
    own = conn is None
    conn = conn or await asyncpg.connect(run.stack.database_url)
    try:
        rows = await conn.fetch(
            "SELECT l.classid::bigint AS hi, l.objid::bigint AS lo, a.client_port FROM pg_locks l "
            "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        )
    finally:
        if own:
            await conn.close()
    return {r["client_port"] for r in rows if (r["hi"] << 32) | r["lo"] == key}


async def relay_holder(run: CityRun, name: str, conn: asyncpg.Connection | None = None) -> ServiceProcess | None:
    """The replica of `name` whose database session holds the relay's advisory lock (from pg_locks, matched to
    the process by the session's client port)."""
    ports = await relay_lock_ports(run, name, conn)
    if not ports:
        return None
    return next((p for p in run.procs[name] if p not in run.retired and local_ports(p) & ports), None)


def local_ports(proc: ServiceProcess) -> set[int]:
    """Local TCP ports of the process's sockets (from /proc: its socket inodes, and the kernel's TCP table)."""
    pid = proc.pid()
    if pid is None:
        return set()
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cols = line.split()
                if cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports
