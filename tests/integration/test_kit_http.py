"""The kit's HTTP guarantees through real HTTP: problem+json, idempotency, auth, 503 while PostgreSQL is down."""

from __future__ import annotations

import asyncio
import shutil

import asyncpg
import httpx
import pytest

from shared.auth import issue_token
from shared.devstack import state_dir
from shared.devstack.postgres import Postgres
from shared.testing.fixtures import free_port, read_topic, serve, wait_for
from tests.integration.kitapp import TOPIC, KitSettings, app

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer " + issue_token(role="school_admin", org_path="/c/d1/s1")}
PROBLEM = "application/problem+json"


def body(item_id: str = "a", org_path: str = "/c/d1/s1/g1", seq: int = 1) -> dict[str, object]:
    return {"item_id": item_id, "org_path": org_path, "seq": seq}


async def test_idempotency_key_replays_the_first_response_and_writes_once(make_settings):
    settings = make_settings(KitSettings)
    async with serve(app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        headers = {**ADMIN, "Idempotency-Key": "k-1"}
        first, *again = await asyncio.gather(
            *(http.post("/api/v1/items", json=body("once"), headers=headers) for _ in range(5))
        )
        assert first.status_code == 201
        assert all(r.status_code == 201 and r.json() == first.json() for r in again)
        assert sum(r.headers.get("idempotent-replayed") == "true" for r in [first, *again]) == 4
        other = await http.post("/api/v1/items", json=body("other"), headers=headers)
        assert other.status_code == 422
        assert other.headers["content-type"] == PROBLEM
        assert other.json()["errors"][0]["pointer"] == "/header/Idempotency-Key"
        messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(TOPIC), expect=1)
        assert [m["value"]["data"]["item_id"] for m in messages] == ["once"]


async def test_validation_errors_are_problem_json_with_field_pointers(make_settings):
    settings = make_settings(KitSettings)
    async with serve(app(settings, consume=False)) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/v1/items", json={"item_id": "", "org_path": "x", "seq": -1}, headers=ADMIN)
        assert r.status_code == 422
        assert r.headers["content-type"] == PROBLEM
        doc = r.json()
        assert doc["status"] == 422 and doc["title"] == "Invalid request"
        assert {e["pointer"] for e in doc["errors"]} == {"/item_id", "/org_path", "/seq"}
        r = await http.post("/api/v1/items", content=b"{broken", headers={**ADMIN, "content-type": "application/json"})
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
        r = await http.get("/api/v1/nothing-here", headers=ADMIN)
        assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert health.json()["relay"]["role"] in {"leader", "standby"} and health.json()["consumers"] == {}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
        metrics = (await http.get("/metrics")).text
        assert 'http_requests_total{method="POST",route="/api/v1/items",service="kittest",status="422"}' in metrics


@pytest.mark.parametrize(
    ("headers", "payload", "status"),
    [
        ({}, body(), 401),
        ({"Authorization": "Bearer not-a-jwt"}, body(), 401),
        (
            {"Authorization": "Bearer " + issue_token(role="school_admin", org_path="/c/d1/s1", secret="wrong")},
            body(),
            401,
        ),
        ({"Authorization": "Bearer " + issue_token(role="teacher", org_path="/c/d1/s1")}, body(), 403),
        ({"Authorization": "Bearer " + issue_token(role="auditor", org_path="/c")}, body(), 403),
        (ADMIN, body(org_path="/c/d1/s2/g1"), 403),
        (ADMIN, body(org_path="/c/d1/s10"), 403),
        ({"Authorization": "Bearer " + issue_token(role="district_admin", org_path="/c/d2")}, body(), 403),
        ({"Authorization": "Bearer " + issue_token(role="district_admin", org_path="/c/d1")}, body(), 201),
        ({"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path="/c")}, body(), 201),
    ],
)
async def test_auth_roles_and_org_scope(make_settings, headers, payload, status):
    settings = make_settings(KitSettings)
    async with serve(app(settings, consume=False)) as url, httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/v1/items", json=payload, headers=headers)
        assert r.status_code == status, r.text
        if status >= 400:
            assert r.headers["content-type"] == PROBLEM
            assert r.json()["status"] == status
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")


async def test_database_down_gives_503_publishes_nothing_and_recovers_without_restart(make_settings, unique):
    pg = Postgres(state_dir() / f"pg-{unique}", free_port())
    await asyncio.to_thread(pg.start)
    try:
        settings = make_settings(KitSettings, database_url=pg.address)
        async with serve(app(settings)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            ok = await http.post("/api/v1/items", json=body("before"), headers=ADMIN)
            assert ok.status_code == 201
            await asyncio.to_thread(pg.stop)
            down = await http.post("/api/v1/items", json=body("during"), headers=ADMIN)
            assert down.status_code == 503
            assert down.headers["content-type"] == PROBLEM
            assert down.headers["retry-after"] == "2"
            assert (await http.get("/readyz")).status_code == 503
            await asyncio.to_thread(pg.start)

            async def accepted() -> bool:
                r = await http.post("/api/v1/items", json=body("after"), headers=ADMIN)
                return r.status_code == 201

            await wait_for(accepted, timeout=30, interval=0.5)
            # The outage may interrupt the relay after an ack (a duplicate on Kafka): distinct events count.
            messages = await read_topic(settings.kafka_bootstrap_servers, settings.topic(TOPIC), expect=2)
            distinct = {m["value"]["id"]: m["value"]["data"]["item_id"] for m in messages}
            assert sorted(distinct.values()) == ["after", "before"]
            conn = await asyncpg.connect(pg.address, server_settings={"search_path": settings.db_schema})
            try:
                await wait_for(lambda: conn.fetchval("SELECT count(*) = 2 FROM applied"), timeout=20)
                assert await conn.fetchval("SELECT max(n) FROM applied_counts") == 1
            finally:
                await conn.close()
    finally:
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(pg.root.parent, ignore_errors=True)
