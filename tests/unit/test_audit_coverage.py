"""The audit coverage rules: personal routes are found from the OpenAPI schemas; untyped routes are listed."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from tests.audit_coverage import UNTYPED, classify, personal_fields


def test_untyped_routes_are_exactly_the_listed_ones():
    _, untyped = classify()
    assert sorted(untyped - set(UNTYPED)) == [], "routes without a response schema: type them or list them"
    assert sorted(set(UNTYPED) - untyped) == [], "listed as untyped but typed now (or gone): remove from UNTYPED"


def test_the_known_personal_routes_are_found():
    personal, _ = classify()
    for route in [
        ("committees", "GET", "/api/v1/students/{student_id}"),
        ("committees", "GET", "/api/v1/students"),
        ("committees", "GET", "/api/v1/families/{family_id}"),
        ("committees", "GET", "/api/v1/staff/{staff_id}"),
        ("visits", "GET", "/api/v1/visits/{visit_id}"),
        ("outreach", "GET", "/api/v1/cases/{case_id}"),
        ("outreach", "GET", "/api/v1/referrals/{referral_id}"),
    ]:
        assert route in personal, route
    assert "StudentOut.national_id" in personal[("committees", "GET", "/api/v1/students/{student_id}")]


class Guardian(BaseModel):
    guardian_id: str
    phone: str | None


class Kid(BaseModel):
    student_id: str
    guardians: list[Guardian]


class Wrapper(BaseModel):
    items: list[Kid]
    next_cursor: str | None


def test_a_new_route_with_personal_fields_deep_inside_its_schema_is_found():
    app = FastAPI()

    @app.get("/kids", response_model=Wrapper)
    async def kids() -> Any:
        return {"items": [], "next_cursor": None}

    doc = app.openapi()
    schema = doc["paths"]["/kids"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert personal_fields(doc, schema) == {"Guardian.phone"}
