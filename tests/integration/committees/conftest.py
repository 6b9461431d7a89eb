"""Run the committees service against the real stack; helpers to import a city and read its events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from demo import citygen
from services.committees.app import TOPICS, create
from services.committees.settings import Settings
from shared.auth import issue_token
from shared.events import registry
from shared.testing.fixtures import free_port, read_topic, serve, wait_for

CITY = "/620400"
BUREAU = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path=CITY)}


def auth(role: str, org_path: str, staff_id: str | None = None) -> dict[str, str]:
    """Authorization header for a dev token."""
    return {"Authorization": "Bearer " + issue_token(role=role, org_path=org_path, staff_id=staff_id)}


@dataclass
class Svc:
    """A running committees service."""

    settings: Settings
    http: httpx.AsyncClient

    async def events(self, topics: list[str] | None = None) -> list[dict[str, Any]]:
        """Every event on the committees topics (default: all), parsed and checked against its contract."""
        out = []
        for topic in topics or TOPICS:
            msgs = await read_topic(
                self.settings.kafka_bootstrap_servers, self.settings.topic(topic), idle=0.3, timeout=10
            )
            for m in msgs:
                env = m["value"]
                spec = registry.spec(env["type"])
                assert spec.topic == topic
                payload = spec.model.model_validate(env["data"])
                assert m["key"] == spec.key(payload) == env["subject"]
                out.append({"type": env["type"], "key": m["key"], "data": env["data"], "envelope": env})
        return out

    async def drained(self) -> None:
        """Wait until the relay published every outbox row."""
        await wait_for(self._outbox_empty, timeout=60)

    async def _outbox_empty(self) -> bool:
        conn = await asyncpg.connect(
            self.settings.database_url, server_settings={"search_path": self.settings.db_schema}
        )
        try:
            return bool(await conn.fetchval("SELECT count(*) = 0 FROM outbox"))
        finally:
            await conn.close()

    async def run_import(self, body: dict[str, Any] | None = None, csv: dict[str, str] | None = None) -> dict[str, Any]:
        """Run a JSON or CSV import to completion; the finished job."""
        if body is not None:
            r = await self.http.post("/api/v1/imports", json=body, headers=BUREAU)
            assert r.status_code == 202, r.text
        else:
            assert csv is not None
            r = await self.http.post("/api/v1/imports/csv", headers=BUREAU)
            assert r.status_code == 201, r.text
            import_id = r.json()["import_id"]
            for entity, text in csv.items():
                u = await self.http.put(
                    f"/api/v1/imports/{import_id}/files/{entity}",
                    content=text.encode(),
                    headers={**BUREAU, "content-type": "text/csv"},
                )
                assert u.status_code == 200, u.text
            r = await self.http.post(f"/api/v1/imports/{import_id}/start", headers=BUREAU)
            assert r.status_code == 202, r.text
        url = r.headers["location"]

        async def done() -> dict[str, Any] | None:
            job = (await self.http.get(url, headers=BUREAU)).json()
            return job if job["status"] in ("succeeded", "failed") else None

        job: dict[str, Any] = await wait_for(done, timeout=120, interval=0.2)
        assert job["status"] == "succeeded", job
        return job


@pytest.fixture
async def svc(make_settings: Callable[..., Settings]) -> AsyncIterator[Svc]:
    settings = make_settings(Settings)
    async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield Svc(settings, http)


@pytest.fixture(scope="module")
async def module_svc(stack: Any) -> AsyncIterator[Svc]:
    """One service for a whole test module (for read-mostly tests that share an imported city)."""
    tag = uuid.uuid4().hex[:10]
    settings = Settings(
        env="test",
        database_url=stack.database_url,
        kafka_bootstrap_servers=stack.kafka_bootstrap,
        db_schema=f"t_{tag}_committees",
        topic_prefix=f"t{tag}.",
        topic_partitions=3,
        relay_poll_seconds=0.2,
        http_port=free_port(),
    )
    async with serve(create(settings)) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield Svc(settings, http)


@pytest.fixture(scope="session")
def small_city() -> citygen.City:
    """A small generated city (5 districts, a few schools)."""
    return citygen.generate(scale=0.003, seed=7)
