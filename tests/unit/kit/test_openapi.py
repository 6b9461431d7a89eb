"""The kit's OpenAPI: operationIds, security, problem+json errors, Idempotency-Key, pages and enum labels."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from pydantic import BaseModel

from shared import idempotency, openapi, pages
from shared.auth import CurrentPrincipal
from shared.contracts.common import Category
from shared.problems import Problem
from shared.settings import ServiceSettings
from shared.web import Pool, ServiceSpec, create_app
from tools import docs


class Item(BaseModel):
    item_id: str
    category: Category


def kit_app(*routers: APIRouter) -> Any:
    return create_app(ServiceSpec(settings=ServiceSettings(), migrations=Path("."), routers=list(routers)))


def demo_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/items", response_model=pages.Page[Item])
    async def list_items(principal: CurrentPrincipal, pool: Pool, limit: pages.Limit = 50, cursor: pages.Cursor = None):
        raise NotImplementedError

    @router.post("/items", status_code=201, dependencies=[idempotency.KEY], responses=openapi.errors(409))
    async def add_item(body: Item, principal: CurrentPrincipal, pool: Pool) -> Item:
        raise NotImplementedError

    @router.get("/whoami")
    async def whoami() -> dict[str, str]:
        return {}

    return router


def test_the_document_tells_operation_ids_security_errors_and_headers():
    doc = kit_app(demo_router()).openapi()
    validate(doc)
    ops = {op["operationId"]: op for item in doc["paths"].values() for op in item.values()}
    assert set(ops) == {"list_items", "add_item", "whoami"}
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert ops["add_item"]["security"] == [{"bearer": []}] and "security" not in ops["whoami"]
    assert set(ops["add_item"]["responses"]) == {"201", "400", "401", "403", "409", "413", "422", "503"}
    assert set(ops["list_items"]["responses"]) == {"200", "401", "403", "422", "503"}
    assert set(ops["whoami"]["responses"]) == {"200", "422"}
    for op in ops.values():
        for status, response in op["responses"].items():
            if status >= "400":
                assert response["content"] == {"application/problem+json": {"schema": {"$ref": openapi.PROBLEM_REF}}}
    assert "HTTPValidationError" not in json.dumps(doc)
    headers = [p for p in ops["add_item"].get("parameters", []) if p["in"] == "header"]
    assert [(h["name"], h["schema"]["maxLength"]) for h in headers] == [("Idempotency-Key", 200)]
    assert not [p for p in ops["list_items"].get("parameters", []) if p["in"] == "header"]
    page = ops["list_items"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert page == {"$ref": "#/components/schemas/ItemPage"}
    assert set(doc["components"]["schemas"]["ItemPage"]["properties"]) == {"items", "next_cursor"}
    # What refuse_bad_text refuses is in the patterns: no control characters (bodies allow tab, LF, CR).
    assert doc["components"]["schemas"]["Item"]["properties"]["item_id"]["pattern"] == openapi.BODY_TEXT
    cursor = next(p for p in ops["list_items"]["parameters"] if p["name"] == "cursor")
    assert cursor["schema"]["pattern"] == pages.CURSOR_PATTERN and cursor["schema"]["type"] == "string"
    assert re.fullmatch(openapi.BODY_TEXT, "line\nnext\tcell") and not re.fullmatch(openapi.BODY_TEXT, "a\x00")
    assert not re.fullmatch(openapi.PARAMETER_TEXT, "a\nb") and not re.fullmatch(openapi.PARAMETER_TEXT, "\x9f")
    category = doc["components"]["schemas"]["Category"]
    assert "`left_behind`: 留守儿童 / Left-behind child" in category["description"]
    assert len(category["x-enum-descriptions"]) == len(Category)


def test_problem_bodies_match_the_problem_schema():
    app = kit_app(demo_router())
    doc = app.openapi()
    problem = {**doc["components"]["schemas"]["Problem"], "components": doc["components"]}
    http = TestClient(app)  # not started: these answers come before any database use
    answers = [
        http.post("/api/v1/items", json={"item_id": 1}),
        http.post("/api/v1/items", json={}, headers={"Authorization": "Bearer not-a-jwt"}),
        http.get("/api/v1/whoami", headers={"x-request-id": "a b"}),
        http.get("/api/v1/whoami?x=%00"),
    ]
    assert [r.status_code for r in answers] == [401, 401, 422, 422]
    for response in answers:
        assert response.headers["content-type"] == "application/problem+json"
        jsonschema.validate(response.json(), problem)
    assert answers[2].json()["errors"][0]["pointer"] == "/headers/x-request-id"


def test_route_functions_named_alike_are_refused_at_start():
    one, two = APIRouter(), APIRouter()

    async def same() -> None: ...

    one.get("/a")(same)
    two.get("/b")(same)

    with pytest.raises(RuntimeError, match="same"):
        kit_app(one, two)


def test_cursor_round_trip_and_forged_cursors():
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    rows = [{"at": at, "id": str(i)} for i in range(3)]
    first = pages.page(rows, 2, lambda r: (r["at"], r["id"]))
    assert first["items"] == rows[:2] and first["next_cursor"]
    assert pages.after(first["next_cursor"], datetime, str) == (at, "1")
    assert pages.page(rows, 3, lambda r: (r["id"],))["next_cursor"] is None
    assert pages.after(None, str) is None
    for forged in ["!!!", "bm90IGpzb24", pages.encode_cursor("a", "b"), pages.encode_cursor(1)]:
        with pytest.raises(Problem) as caught:
            pages.after(forged, datetime, str)
        assert caught.value.status == 422 and caught.value.errors == [
            {"pointer": "/query/cursor", "detail": "is not a cursor returned by this API"}
        ]


def test_the_documents_in_the_repository_are_current():
    """docs/openapi/*.json are what the code documents; after changing a route: `python -m tools.docs`."""
    stale = [p.name for p in docs.stale() if p.parent == docs.OPENAPI]  # each with a diff on stderr
    assert stale == [], "run: .venv/bin/python -m tools.docs"
