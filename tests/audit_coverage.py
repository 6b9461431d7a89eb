"""Which routes return personal data, found from each service's OpenAPI document (the audit coverage tests).

A route is personal when a field of its 2xx JSON response schema (at any depth) is named like a person's
name, an ID number, a phone, an address, a birth date or free-text notes about a child. Every personal route
must write exactly one audit row per call (the integration tests call each one). A route whose 2xx response
has no typed schema cannot be judged, so it must be listed in UNTYPED with the reason; a new untyped route fails
the unit test until it gets a response model or a reason.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import FastAPI

PERSONAL_FIELD = re.compile(
    r"^(name|.*_name|national_id|id_number|.*_no|phone|.*_phone|address|birth_date|note|notes|outcome)$"
)

# Fields whose names look personal but are not about a person: (schema title, field) -> why.
NOT_PERSONAL: dict[tuple[str, str], str] = {
    ("TeamSummary", "name"): "the instructor team's own name",
    ("TeamOut", "name"): "the instructor team's own name",
    ("OrgUnitOut", "name"): "the org unit's own name (public to signed-in callers)",
    ("ParentSchoolOut", "name"): "the parent school's own name",
    ("ParentSchoolDetail", "name"): "the parent school's own name",
    ("CampaignOut", "name"): "the campaign's own name",
    ("CampaignDetailOut", "name"): "the campaign's own name",
    ("LaunchOut", "name"): "the campaign's own name",
    ("MyCampaignProgress", "name"): "the campaign's own name",
}

Route = tuple[str, str, str]  # service, METHOD, path

# Routes whose 2xx answer has no typed JSON schema (yet), with the reason they return no personal data.
UNTYPED: dict[Route, str] = {
    # reporting: aggregate indicators only (its JSON answers are typed); it holds no per-person rows
    ("reporting", "GET", "/api/v1/exports/{table}"): "CSV/XLSX of the aggregate tables (no per-person rows)",
}


def _apps() -> dict[str, FastAPI]:
    from services.committees.app import create as committees
    from services.outreach.app import create as outreach
    from services.reporting.app import create as reporting
    from services.visits.app import create as visits

    makers: dict[str, Callable[[], Any]] = {
        "committees": committees,
        "visits": visits,
        "outreach": outreach,
        "reporting": reporting,
    }
    return {name: make() for name, make in makers.items()}


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        resolved: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return resolved
    return schema


def personal_fields(doc: dict[str, Any], schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
    """`Schema.field` names of personal fields anywhere inside a response schema."""
    ref = schema.get("$ref")
    if ref in seen:
        return set()
    node = _resolve(doc, schema)
    seen = seen | {ref} if ref else seen
    title = node.get("title", "")
    found: set[str] = set()
    for name, sub in node.get("properties", {}).items():
        if PERSONAL_FIELD.match(name) and (title, name) not in NOT_PERSONAL:
            found.add(f"{title}.{name}")
        found |= personal_fields(doc, sub, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found |= personal_fields(doc, node[key], seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(key, []):
            found |= personal_fields(doc, sub, seen)
    return found


def _typed(doc: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    """Whether a response schema says what it holds (not missing, `{}` or a free-form object)."""
    if not schema:
        return False
    node = _resolve(doc, schema)
    if "$ref" in schema or "properties" in node or "items" in node:
        return True
    return any(_typed(doc, s) for k in ("allOf", "anyOf", "oneOf") for s in node.get(k, []))


def _success_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    for status, response in op.get("responses", {}).items():
        if status.startswith("2"):
            content = response.get("content", {})
            json_schema: dict[str, Any] | None = content.get("application/json", {}).get("schema")
            return json_schema
    return None


def classify() -> tuple[dict[Route, set[str]], set[Route]]:
    """Every route of the four services: the personal ones (with their personal fields) and the untyped ones."""
    personal: dict[Route, set[str]] = {}
    untyped: set[Route] = set()
    for service, app in _apps().items():
        doc = app.openapi()
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                route = (service, method.upper(), path)
                schema = _success_schema(op)
                if not _typed(doc, schema):
                    untyped.add(route)
                    continue
                assert schema is not None
                fields = personal_fields(doc, schema)
                if fields:
                    personal[route] = fields
    return personal, untyped


Call = Callable[[Any, dict[str, Any]], Awaitable[Any]]


async def assert_each_audited(
    service: str, calls: dict[Route, Call], http: Any, database_url: str, schema: str
) -> dict[Route, asyncpg.Record]:
    """Call every personal route of `service` in order; each call must write exactly one audit row of its own."""
    personal, _ = classify()
    missing = sorted(r for r in personal if r[0] == service and r not in calls)
    assert not missing, f"personal routes nobody proves audited (add them to the calls): {missing}"
    conn = await asyncpg.connect(database_url)
    try:
        ctx: dict[str, Any] = {}
        found: dict[Route, asyncpg.Record] = {}
        for route, call in calls.items():
            resp = await call(http, ctx)
            assert resp.status_code < 300, (route, resp.text)
            rows = await conn.fetch(
                f'SELECT * FROM "{schema}".audit_reads WHERE request_id = $1', resp.headers["x-request-id"]
            )
            assert len(rows) == 1, (route, rows)
            method, path = route[1], route[2]
            expected = "write" if method != "GET" else "read" if path.endswith("}") else "list"
            assert rows[0]["action"] == expected, (route, rows[0]["action"])
            found[route] = rows[0]
        return found
    finally:
        await conn.close()
