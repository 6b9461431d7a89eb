"""A small city run through the four services as real processes (the demo's steps, with fixed inputs)."""

from __future__ import annotations

import asyncio
import random
import shutil
from dataclasses import dataclass, field
from typing import Any

from demo import citygen
from demo.__main__ import cooperation, department_answers, import_city, run_campaign
from demo.client import CITY, Api, bureau_token, settled
from services.outreach.settings import Rules
from shared.contracts.common import Category, Severity
from shared.devstack import ServiceProcess, StackInfo, state_dir
from shared.devstack.services import SERVICES
from shared.testing.fixtures import drop_test_resources, free_port

SCALE, SEED = 0.004, 11


@dataclass
class CityRun:
    """The four service processes of one run, each with its own schema and topic prefix."""

    stack: StackInfo
    run_id: str
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self) -> None:
        ports = {name: free_port() for name in SERVICES}
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        env = {
            **self.stack.env(),
            "HSS_ENV": "test",
            "HSS_TOPIC_PREFIX": f"e{self.run_id}.",
            "REPORTING_VISITS_URL": urls["visits"],
            "REPORTING_OUTREACH_URL": urls["outreach"],
            "REPORTING_COMMITTEES_URL": urls["committees"],
            "LOG_LEVEL": "WARNING",
            **{f"{n.upper()}_DB_SCHEMA": f"e_{self.run_id}_{n}" for n in SERVICES},
            **{f"{n.upper()}_TOPIC_PARTITIONS": "3" for n in SERVICES},
        }
        for name, port in ports.items():
            self.procs[name] = ServiceProcess(state_dir() / f"e2e-{self.run_id}", name, port, env)
        for proc in self.procs.values():
            proc.start()

    def url(self, name: str) -> str:
        return self.procs[name].address

    async def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()
        await drop_test_resources(self.stack, f"e{self.run_id}.", {f"e_{self.run_id}_{n}" for n in SERVICES})
        shutil.rmtree(state_dir() / f"e2e-{self.run_id}", ignore_errors=True)


async def all_pages(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of an offset-paged list endpoint that answers a plain list."""
    out: list[dict[str, Any]] = []
    while True:
        page = await api.get(path, limit=500, offset=len(out), **params)
        out += page
        if len(page) < 500:
            return out


async def run_city(run: CityRun, *, during_campaign: Any = None) -> dict[str, Any]:
    """Import, cooperation structure, campaign, department answers; returns what went in and what came out."""
    rng = random.Random(SEED)
    token = bureau_token()
    committees = Api(run.url("committees"), token, repeatable=True)
    visits = Api(run.url("visits"), token)
    outreach = Api(run.url("outreach"), token)
    reporting = Api(run.url("reporting"), token)
    procs = list(run.procs.values())
    try:
        city = citygen.generate(scale=SCALE, seed=SEED)
        await import_city(committees, city)
        await cooperation(committees, city, rng)
        await settled(procs)
        campaign_task = asyncio.create_task(run_campaign(visits, rng, single_share=0.3, keep_records=True))
        if during_campaign is not None:
            await during_campaign(run)
        stats = await campaign_task
        await settled(procs)
        acked = await department_answers(run.url("outreach"))
        await settled(procs)
        cases = await all_pages(outreach, "/cases")
        referrals = await all_pages(outreach, "/referrals")
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
