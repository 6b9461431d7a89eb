"""Idempotency-Key is honoured exactly where the OpenAPI documents say so: one way in (`idempotency.KEY`)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest
from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared import idempotency, openapi
from shared.auth import CurrentPrincipal, Role, issue_token
from shared.settings import ServiceSettings
from shared.web import ServiceSpec, create_app
from tools import docs

WRITES = ("post", "put", "patch", "delete")
# Writes that do not take an Idempotency-Key, and why a retry is safe without one.
NOT_IDEMPOTENT_BY_KEY = {
    ("committees", "put", "/api/v1/imports/{import_id}/files/{entity}"): (
        "PUT replaces the entity's file: sending it again leaves the same state (idempotent by HTTP semantics)"
    ),
}
TOKEN = {"Authorization": "Bearer " + issue_token(role="bureau_admin", org_path="/c", subject="t")}


def documented_writes() -> dict[tuple[str, str, str], dict[str, Any]]:
    files = sorted(docs.OPENAPI.glob("*.json"))
    assert {f.stem for f in files} == {"committees", "visits", "outreach", "reporting"}
    return {
        (doc.stem, method, path): operation
        for doc in files
        for path, item in json.loads(doc.read_text()).get("paths", {}).items()
        for method, operation in item.items()
        if method in WRITES
    }


def test_every_write_documents_idempotency_key_or_says_why_not():
    writes = documented_writes()
    assert len(writes) > 40  # the four services' writes, not an empty glob
    missing = {
        w
        for w, operation in writes.items()
        if not any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    }
    assert missing == set(NOT_IDEMPOTENT_BY_KEY), "declare dependencies=[idempotency.KEY] (or list it here, with why)"


def app_with(*, declared: bool) -> Any:
    router = APIRouter(prefix="/api/v1")

    @router.post("/things", status_code=201, dependencies=[idempotency.KEY] if declared else [])
    async def add_thing(request: Request, principal: CurrentPrincipal) -> Any:
        no_database = cast(asyncpg.Pool, None)  # the key is read (or refused) before any database use
        return await idempotency.write(request, principal, no_database, lambda conn: conn.fetchval("SELECT 1"))

    spec = ServiceSpec(settings=ServiceSettings(), migrations=Path("."), routers=[router])
    return create_app(spec)


def test_a_route_without_the_key_dependency_cannot_honour_the_header():
    app = app_with(declared=False)
    operation = app.openapi()["paths"]["/api/v1/things"]["post"]
    assert not [p for p in operation.get("parameters", []) if p["in"] == "header"]
    http = TestClient(app)
    for headers in ({**TOKEN, "Idempotency-Key": "k-1"}, TOKEN):
        with pytest.raises(RuntimeError, match=r"without declaring idempotency\.KEY"):
            http.post("/api/v1/things", headers=headers)


def test_the_declared_key_is_checked_as_documented():
    app = app_with(declared=True)
    (header,) = app.openapi()["paths"]["/api/v1/things"]["post"]["parameters"]
    assert header["name"] == "Idempotency-Key" and header["schema"]["pattern"] == openapi.PARAMETER_TEXT
    http = TestClient(app)
    for bad in ("", "x" * (idempotency.MAX_KEY_LENGTH + 1), "tab\there", "c1\x85"):
        answer = http.post("/api/v1/things", headers={**TOKEN, "Idempotency-Key": bad.encode("latin-1")})
        assert answer.status_code == 422, bad
        assert answer.json()["errors"][0]["pointer"] == "/header/Idempotency-Key"


def test_a_kept_answer_is_the_json_fastapi_s_encoder_writes():
    """`keep` writes answers with orjson, falling back to FastAPI's encoder for what orjson does not know: the
    stored JSON is the same as through `jsonable_encoder` alone."""

    class Answer(BaseModel):
        at: dt.datetime
        tags: set[str]

    body = {
        "when": dt.datetime(2026, 12, 2, 8, 0, 0, 1234, tzinfo=dt.UTC),
        "on": dt.date(2026, 12, 2),
        "naive": dt.datetime(2026, 12, 2, 8, 0),
        "role": Role.TEACHER,
        "by_role": {Role.AUDITOR: 1},
        "ids": (uuid.UUID(int=7), decimal.Decimal("1.5"), frozenset({"x"})),
        "model": Answer(at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), tags={"a"}),
        "text": '汉字 "quoted" \\ slash',
        "none": None,
    }
    assert json.loads(idempotency._json(body)) == json.loads(json.dumps(jsonable_encoder(body)))
