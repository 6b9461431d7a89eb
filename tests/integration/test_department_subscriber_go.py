"""The example department subscriber (Go, CloudEvents Go SDK's Kafka binding) reads real relayed referrals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.outreach.app import create
from services.outreach.settings import OutreachSettings
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import REFERRAL_TOPICS, referral_topic
from shared.devstack import StackInfo, department_access, departments, state_dir
from shared.devstack.kafka import Kafka, fetch_jars
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.outreach.helpers import family, finding, publish, school_staff, student

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "department-subscriber-go"
DEPARTMENT = "disabled_persons_federation"
PARTNER = {
    "Authorization": "Bearer " + issue_token(role="department_partner", org_path="/620400", department=DEPARTMENT)
}


def build_subscriber() -> Path:
    """Build the example once per source version into ~/.cache (Go fetches the SDK through its module proxy)."""
    sources = sorted([EXAMPLE / "go.mod", EXAMPLE / "go.sum", *EXAMPLE.glob("*.go")])
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in sources))
    binary = Path.home() / ".cache" / "hss-platform" / f"department-subscriber-{digest.hexdigest()[:16]}"
    if not binary.exists():
        tmp = binary.with_suffix(f".{os.getpid()}")
        subprocess.run(["go", "build", "-o", str(tmp), "."], cwd=EXAMPLE, check=True, timeout=900)
        tmp.replace(binary)
    return binary


@asynccontextmanager
async def department_login(stack: StackInfo, topic_prefix: str) -> AsyncIterator[tuple[str, list[str], dict[str, str]]]:
    """Bootstrap, flags and environment of the department's own login when the devstack runs the broker.

    There the subscriber connects like a real department: SASL/SCRAM on the department listener, allowed by the
    broker's ACLs only its own topic (granted for this test's topic prefix) and groups named `<department>.*`.
    An external broker (KAFKA_BOOTSTRAP_SERVERS) has no department users: the plain listener is used.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield stack.kafka_bootstrap, [], {}
        return
    broker = Kafka(state_dir(), int(stack.kafka_bootstrap.rpartition(":")[2]))
    program = broker._java_cmd(fetch_jars(broker.log), str(departments.PROGRAM))

    def access(revoke: bool) -> None:
        departments.run_access_program(
            program, stack.kafka_bootstrap, [DEPARTMENT], log=broker.log, topic_prefix=topic_prefix, revoke=revoke
        )

    await asyncio.to_thread(access, False)
    try:
        login = department_access(DEPARTMENT)
        yield login.bootstrap, ["-user", DEPARTMENT], {"KAFKA_SASL_PASSWORD": login.password}
    finally:
        await asyncio.to_thread(access, True)


async def test_go_subscriber_prints_exactly_its_departments_referral_events(make_settings, stack, unique):
    binary = await asyncio.to_thread(build_subscriber)
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    async with (
        serve(create(settings, ManualClock())) as url,
        httpx.AsyncClient(base_url=url) as http,
        department_login(stack, settings.topic_prefix) as (bootstrap, login, login_env),
    ):
        await publish(settings, [*school_staff(), student("stu-d"), family("fam-stu-d", ["stu-d"], away=True)])
        await _directory_loaded(settings)
        await publish(
            settings,
            [
                finding("stu-d", Category.DISABILITY, Severity.HIGH),
                finding("stu-w", Category.FAMILY_CONFLICT, Severity.HIGH),
            ],
        )
        mine = await wait_for(lambda: _referrals(http), timeout=20)
        referral_id = mine[0]["referral_id"]
        assert (await http.post(f"/api/v1/referrals/{referral_id}/acknowledge", headers=PARTNER)).status_code == 200
        topic = settings.topic(referral_topic(DEPARTMENT))
        relayed = await read_topic(
            settings.kafka_bootstrap_servers, [settings.topic(t) for t in REFERRAL_TOPICS], expect=3
        )
        ours = [m["value"] for m in relayed if m["value"]["data"]["department"] == DEPARTMENT]
        assert [e["type"] for e in ours] == ["outreach.referral.requested.v1", "outreach.referral.acknowledged.v1"]
        assert len(relayed) == 3  # the other department's referral went to that department's own topic
        assert {m["topic"] for m in relayed if m["value"]["data"]["department"] == DEPARTMENT} == {topic}

        proc = await asyncio.create_subprocess_exec(
            str(binary),
            *("-brokers", bootstrap, *login, "-topic", topic, "-department", DEPARTMENT),
            *("-group", f"{DEPARTMENT}.test-{unique}", "-count", str(len(ours)), "-timeout", "90s"),
            env={**os.environ, **login_env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "skipped" not in err.decode(), err.decode()
        printed = [json.loads(line) for line in out.decode().splitlines()]
        assert [(p["id"], p["type"]) for p in printed] == [(e["id"], e["type"]) for e in ours]
        for p, e in zip(printed, ours, strict=True):
            assert p["encoding"] == "structured"
            assert p["source"] == "/services/outreach"
            assert p["subject"] == p["referral_id"] == referral_id
            assert p["department"] == DEPARTMENT and p["category"] == "disability"
            assert p["correlationid"] == e["correlationid"]


async def _directory_loaded(settings: OutreachSettings) -> None:
    """Wait until outreach's directory copy has the school's staff (a finding would find no carer yet)."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        await wait_for(lambda: conn.fetchval(f'SELECT count(*) = 4 FROM "{settings.db_schema}".staff'), timeout=20)
    finally:
        await conn.close()


async def _referrals(http: httpx.AsyncClient) -> list[dict[str, str]] | None:
    r = await http.get("/api/v1/referrals", headers=PARTNER)
    return r.json()["items"] if r.status_code == 200 and r.json()["items"] else None
