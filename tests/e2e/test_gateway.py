"""The gateway for frontends (nginx, deploy/gateway/) in front of the scripted city's real service processes:
one origin for the four APIs, the body caps, the rate limits, CORS, /docs, and replicas behind it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared.auth import issue_token
from shared.devstack.gateway import Gateway
from shared.devstack.services import SERVICES
from shared.testing.fixtures import free_port
from tests.e2e.city import CityRun
from tests.e2e.gateway import gateway_for, ports_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CITY = "/620400"
BUREAU = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path=CITY, subject="gw-admin")}
PROBLEM = "application/problem+json"


def client(gateway: Gateway, **kw: Any) -> httpx.Client:
    return httpx.Client(base_url=gateway.address, timeout=60, **kw)


def test_one_origin_serves_the_four_apis(city_gateway: Gateway, undisturbed: tuple[CityRun, dict[str, Any]]) -> None:
    _run, out = undisturbed
    campaign_id = out["stats"]["campaign_id"]
    auditor = {"Authorization": "Bearer " + issue_token(role="auditor", org_path=CITY, subject="gw-aud")}
    with client(city_gateway, headers=BUREAU) as http:
        visits = http.get("/api/v1/campaigns").json()
        assert campaign_id in [c["campaign_id"] for c in visits["items"]]
        reporting = http.get("/api/v1/reporting/campaigns").json()
        assert campaign_id in [c["campaign_id"] for c in reporting["items"]]
        cases = http.get("/api/v1/cases", params={"limit": 500})
        assert cases.status_code == 200 and cases.headers["x-request-id"]
        students = http.get("/api/v1/students", params={"limit": 5}).json()
        assert len(students["items"]) == 5
        for name in ("committees", "visits", "outreach"):
            r = http.get(f"/api/v1/audit/{name}/reads", headers=auditor)
            assert r.status_code == 200 and isinstance(r.json()["items"], list), name
        # The client's request id reaches the service and comes back.
        assert http.get("/api/v1/whoami", headers={"X-Request-Id": "gw-test-1"}).headers["x-request-id"] == "gw-test-1"
        # Paths no service serves, and the services' internals, are the gateway's own 404 problem.
        for path in ("/api/v1/nothing", "/metrics", "/api/v1/audit/reads", "/visits/metrics"):
            r = http.get(path)
            assert r.status_code == 404 and r.headers["content-type"] == PROBLEM, path
            assert r.json() == {
                "type": "about:blank",
                "title": "Not found",
                "status": 404,
                "detail": "no service serves this path",
            }


def test_docs_page_and_each_service_openapi_come_from_the_gateway(city_gateway: Gateway) -> None:
    with client(city_gateway) as http:
        page = http.get("/docs/")
        assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text
        bundle = http.get("/docs/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/javascript"
        assert len(bundle.content) > 500_000  # the real Swagger UI, served here (no CDN)
        init = http.get("/docs/hss-docs.js").text
        for name in SERVICES:
            assert f'"/{name}/openapi.json"' in init
            doc = http.get(f"/{name}/openapi.json")
            assert doc.status_code == 200 and doc.json()["openapi"].startswith("3."), name
            assert http.get(f"/{name}/readyz").json()["status"] == "ok"
        assert http.get("/docs").headers["location"] == "/docs/"


def test_body_caps_are_enforced_at_the_gateway_per_route(city_gateway: Gateway) -> None:
    big = b'{"note": "' + b"x" * (1024 * 1024) + b'"}'  # just over the default 1 MiB
    with client(city_gateway, headers={**BUREAU, "Content-Type": "application/json"}) as http:
        refused = http.post("/api/v1/visits", content=big)
        assert refused.status_code == 413 and refused.headers["content-type"] == PROBLEM
        assert refused.json()["title"] == "Content too large"
        assert "x-request-id" not in refused.headers, "refused by the gateway, never sent to the service"
        # The batch route takes 16 MiB: the same size reaches visits, which judges the body itself.
        batch = json.dumps({"visits": [{"note": "x" * (2 * 1024 * 1024)}]}).encode()
        passed = http.post("/api/v1/visits/batch", content=batch)
        assert passed.status_code != 413 and passed.headers["x-request-id"], passed.text[:300]
        too_big = http.post("/api/v1/visits/batch", content=b" " * (16 * 1024 * 1024 + 1))
        assert too_big.status_code == 413 and "x-request-id" not in too_big.headers


def test_a_client_over_its_rate_gets_429_problem_and_others_are_not_affected(
    undisturbed: tuple[CityRun, dict[str, Any]],
) -> None:
    run, _out = undisturbed
    # One request a minute per client and address, bursts of 40 and 400 (locations.conf): the 42nd request of
    # one client within the minute is refused, whatever the speed of this machine.
    with gateway_for(ports_of(run), rates=("1r/m", "1r/m")) as gateway, client(gateway) as http:
        me = {"Authorization": "Bearer " + issue_token(role="teacher", org_path=CITY, subject="gw-busy")}
        statuses = [http.get("/api/v1/whoami", headers=me).status_code for _ in range(45)]
        assert statuses[:41] == [200] * 41
        assert 429 in statuses[41:]
        refused = http.get("/api/v1/whoami", headers=me)
        assert refused.status_code == 429 and refused.headers["content-type"] == PROBLEM
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["status"] == 429
        other = {"Authorization": "Bearer " + issue_token(role="teacher", org_path=CITY, subject="gw-calm")}
        assert http.get("/api/v1/whoami", headers=other).status_code == 200


def test_cors_is_answered_by_the_gateway_only(
    city_gateway: Gateway, undisturbed: tuple[CityRun, dict[str, Any]]
) -> None:
    run, _out = undisturbed
    local, foreign = "http://localhost:5173", "https://elsewhere.example"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "idempotency-key"}
    with client(city_gateway) as http:
        ok = http.options("/api/v1/visits", headers={"Origin": local, **preflight})
        assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == local
        assert "Idempotency-Key" in ok.headers["access-control-allow-headers"]
        assert "POST" in ok.headers["access-control-allow-methods"]
        denied = http.options("/api/v1/visits", headers={"Origin": foreign, **preflight})
        assert "access-control-allow-origin" not in denied.headers
        get = http.get("/api/v1/campaigns", headers={"Origin": local, **BUREAU})
        assert get.status_code == 200 and get.headers["access-control-allow-origin"] == local
        assert "X-Request-Id" in get.headers["access-control-expose-headers"]
        assert get.headers.get_list("access-control-allow-origin") == [local], "one CORS layer, not two"
    direct = httpx.get(f"{run.url('visits')}/api/v1/campaigns", headers={"Origin": local, **BUREAU}, timeout=60)
    assert direct.status_code == 200 and "access-control-allow-origin" not in direct.headers


def test_reads_go_on_while_one_replica_behind_the_gateway_is_gone(
    undisturbed: tuple[CityRun, dict[str, Any]],
) -> None:
    run, _out = undisturbed
    ports = ports_of(run)
    dead = free_port()  # nothing listens there: a replica that crashed
    with gateway_for({**ports, "visits": [dead, *ports["visits"]]}) as gateway, client(gateway) as http:
        statuses = [http.get("/api/v1/campaigns", headers=BUREAU).status_code for _ in range(8)]
    assert statuses == [200] * 8
