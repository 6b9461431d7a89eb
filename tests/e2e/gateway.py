"""The gateway (nginx, deploy/gateway/) in front of the scripted city's service processes, for the e2e tests."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from shared.devstack.gateway import RATES, Gateway
from shared.devstack.services import SERVICES
from shared.testing.fixtures import free_port
from tests.e2e.city import CityRun


@contextmanager
def gateway_for(upstreams: dict[str, list[int]], rates: tuple[str, str] = RATES) -> Iterator[Gateway]:
    """A private gateway on a free port in front of `upstreams` (service → replica ports); stopped afterwards."""
    home = Path(tempfile.mkdtemp(prefix="hss-gateway-"))
    gateway = Gateway(home, free_port(), upstreams, rates)
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
async def city_gateway(undisturbed: tuple[CityRun, dict[str, Any]]) -> AsyncIterator[Gateway]:
    """The gateway in front of the undisturbed city's four services (production rate limits)."""
    run, _out = undisturbed
    with gateway_for(ports_of(run)) as gateway:
        await asyncio.sleep(0)
        yield gateway
