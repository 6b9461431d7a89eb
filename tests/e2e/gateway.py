"""The gateway (nginx, deploy/gateway/) in front of the scripted city's service processes, for the e2e tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.auth import issue_token
from shared.devstack.gateway import RATES, Gateway
from shared.devstack.idp import IdentityProvider
from shared.devstack.services import SERVICES
from shared.testing.fixtures import free_port
from tests.e2e.city import CityRun


@contextmanager
def gateway_for(
    upstreams: dict[str, list[int]], rates: tuple[str, str] = RATES, port: int | None = None
) -> Iterator[Gateway]:
    """A private gateway on `port` (a free one by default) in front of `upstreams` (service → replica ports);
    stopped afterwards."""
    home = Path(tempfile.mkdtemp(prefix="hss-gateway-"))
    gateway = Gateway(home, port or free_port(), upstreams, rates)
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()
        shutil.rmtree(home, ignore_errors=True)


def ports_of(run: CityRun) -> dict[str, list[int]]:
    """Every live replica's port, per service."""
    return {name: [p.port for p in run.procs[name] if p not in run.retired] for name in SERVICES}


@pytest.fixture(scope="session")
def city_gateway_port() -> int:
    """The port of the city's gateway, chosen before the identity provider starts (it redirects to the app there)."""
    return free_port()


@pytest.fixture(scope="session")
def idp(city_gateway_port: int) -> Iterator[IdentityProvider]:
    """The local OpenID Connect provider (frontends/idp/), sending codes to the app on the city's gateway; its
    users are written by the tests (`write_users`)."""
    home = Path(tempfile.mkdtemp(prefix="hss-idp-"))
    provider = IdentityProvider(home, free_port(), [f"http://127.0.0.1:{city_gateway_port}/app/"])
    provider.start()
    try:
        yield provider
    finally:
        provider.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def city_gateway(
    undisturbed: tuple[CityRun, dict[str, Any]], idp: IdentityProvider, city_gateway_port: int
) -> AsyncIterator[Gateway]:
    """The gateway in front of the undisturbed city's four services (production rate limits); the app there signs
    in with the local identity provider (or a dev user)."""
    run, _out = undisturbed
    with gateway_for(ports_of(run), port=city_gateway_port) as gateway:
        gateway.write_sign_in(idp.app_config())
        await asyncio.sleep(0)
        yield gateway


def school_campaign(gateway: Gateway, name: str) -> dict[str, Any]:
    """A new campaign for the city's first school, launched through the gateway, and its teacher with the most
    families (at least two): `campaign_id`, `school` (org path), `teacher_id`, `token` (the teacher's) and
    `assignments` (the teacher's, by family)."""
    bureau = issue_token(role="bureau_admin", org_path="/620400", subject=f"{name}-admin")
    today = dt.date.today()
    with httpx.Client(base_url=gateway.address + "/api/v1", headers={"Authorization": f"Bearer {bureau}"}) as http:
        school = http.get("/org-units", params={"level": "school", "limit": 1}).raise_for_status().json()["items"][0]
        body = {
            "name": name,
            "org_path": school["org_path"],
            "starts_on": (today - dt.timedelta(days=1)).isoformat(),
            "ends_on": (today + dt.timedelta(days=30)).isoformat(),
        }
        key = {"Idempotency-Key": os.urandom(8).hex()}
        campaign_id = http.post("/campaigns", json=body, headers=key).raise_for_status().json()["campaign_id"]
        key = {"Idempotency-Key": os.urandom(8).hex()}
        http.post(f"/campaigns/{campaign_id}/launch", headers=key, timeout=120).raise_for_status()
        page = http.get(f"/campaigns/{campaign_id}/assignments", params={"limit": 1000}).raise_for_status().json()
        teacher_id, n = Counter(a["teacher_id"] for a in page["items"]).most_common(1)[0]
        assert n >= 2, "the scripted city gives a teacher of the first school at least two families"
        staff = http.get(f"/staff/{teacher_id}").raise_for_status().json()
    mine = sorted((a for a in page["items"] if a["teacher_id"] == teacher_id), key=lambda a: a["family_id"])
    token = issue_token(role="teacher", org_path=staff["org_path"], staff_id=teacher_id, subject=f"{name}-{teacher_id}")
    return {
        "campaign_id": campaign_id,
        "school": school["org_path"],
        "teacher_id": teacher_id,
        "token": token,
        "assignments": mine,
    }
