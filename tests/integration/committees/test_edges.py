"""The HTTP edge through real HTTP: bad characters are 422 with a pointer, oversized bodies 413, before any parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.committees.conftest import BUREAU, Svc

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
JSON = {**BUREAU, "content-type": "application/json"}


async def test_nul_and_lone_surrogates_are_422_with_a_pointer_not_500(svc: Svc):
    family = b'{"family_no": "F\\u0000x", "parents_work_away": false, "living_arrangement": "both_parents"}'
    r = await svc.http.post("/api/v1/families", content=family, headers=JSON)
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
    assert r.json()["errors"] == [{"pointer": "/family_no", "detail": "must not contain NUL"}]

    r = await svc.http.post("/api/v1/imports", content=b'{"students": [{"name": "\\ud800"}]}', headers=JSON)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"] == "/students/0/name"

    r = await svc.http.get("/api/v1/students", params={"q": "a\x00"}, headers=BUREAU)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/q"

    r = await svc.http.post("/api/v1/imports/csv", headers=BUREAU)
    assert r.status_code == 201
    csv = b"student_no,name\ns1,A\x00B\n"
    r = await svc.http.put(
        f"/api/v1/imports/{r.json()['import_id']}/files/students",
        content=csv,
        headers={**BUREAU, "content-type": "text/csv"},
    )
    assert r.status_code == 422 and "line 2" in r.json()["errors"][0]["detail"]


async def test_bodies_beyond_the_route_cap_are_413_before_auth_or_parsing(svc: Svc):
    big = b'{"family_no": "' + b"x" * (1024 * 1024) + b'"}'
    for headers in ({"content-type": "application/json"}, JSON):  # with and without a token
        r = await svc.http.post("/api/v1/families", content=big, headers=headers)
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM, r.text

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while it arrives
        for _ in range(20):
            yield b" " * 100_000

    r = await svc.http.post("/api/v1/families", content=chunked(), headers=JSON)
    assert r.status_code == 413

    # The JSON import takes a whole city; the same size is fine there (and reaches validation).
    r = await svc.http.post(
        "/api/v1/imports", content=b'{"students": [' + b" " * (2 * 1024 * 1024) + b"1]}", headers=JSON
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/students/0"


async def test_malformed_tracing_headers_are_refused_not_copied(svc: Svc):
    r = await svc.http.get("/api/v1/org-units", headers={**BUREAU, "x-correlation-id": "x" * 500})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/headers/x-correlation-id"
    assert r.headers["x-correlation-id"] != "x" * 500
    r = await svc.http.get("/api/v1/org-units", headers={**BUREAU, "x-correlation-id": "campaign-2026:run.7"})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == "campaign-2026:run.7"
