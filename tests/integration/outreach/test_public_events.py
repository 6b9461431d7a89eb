"""Public referral events carry ids, category, urgency and school placement only: every field of every public
event type, as published on the real topic, is checked against a deny-list and against its JSON Schema."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from services.outreach.app import create
from services.outreach.settings import OutreachSettings
from services.outreach.usecases.deadlines import tick
from shared.auth import issue_token
from shared.clock import ManualClock
from shared.contracts.common import Category, Severity
from shared.contracts.outreach import REFERRAL, REFERRAL_TOPICS
from shared.events import Envelope, registry
from shared.testing.fixtures import read_topic, serve, wait_for
from tests.integration.outreach.helpers import finding, publish, school, school_staff, student

pytestmark = pytest.mark.integration

# Substrings that must never appear in a public field name: personal data of a minor or their family,
# free text that could hold it, and identifiers that would let a subscriber link a referral to a child.
DENY = (
    "name",
    "id_number",
    "identity",
    "address",
    "phone",
    "mobile",
    "email",
    "birth",
    "dob",
    "age",
    "gender",
    "ethnic",
    "guardian",
    "parent",
    "family",
    "student",
    "note",
    "comment",
    "outcome",
    "class",
    "staff",
    "teacher",
    "carer",
)
CLOUDEVENTS = {
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "dataschema",
    "correlationid",
    "causationid",
    "data",
}
PUBLIC = [s for s in registry.all() if s.public]


def _denied(field: str) -> list[str]:
    return [d for d in DENY if d in field.lower()]


def _fields(schema: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> list[str]:
    """Every property path of a JSON Schema (nested objects and arrays included)."""
    out = []
    for name, prop in schema.get("properties", {}).items():
        out.append(prefix + name)
        for sub in [prop, prop.get("items", {}), *prop.get("anyOf", [])]:
            ref = sub.get("$ref")
            if ref:
                out += _fields(defs[ref.split("/")[-1]], defs, f"{prefix}{name}.")
    return out


def test_every_public_event_type_is_free_of_personal_fields_by_contract():
    assert {s.type.rsplit(".", 2)[1] for s in PUBLIC if s.topic == REFERRAL} == {
        "requested",
        "acknowledged",
        "accepted",
        "declined",
        "resolved",
        "escalated",
    }
    for spec in PUBLIC:
        schema = spec.model.model_json_schema()
        for field in _fields(schema, schema.get("$defs", {})):
            assert not _denied(field), f"{spec.type}: public field {field!r} is on the deny-list"


async def test_published_public_events_have_only_contract_fields_and_no_personal_data(make_settings):
    clock = ManualClock()
    settings = make_settings(OutreachSettings, scheduler_enabled=False)
    dpf = {
        "Authorization": "Bearer "
        + issue_token(role="department_partner", org_path="/620400", department="disabled_persons_federation")
    }
    ps = {
        "Authorization": "Bearer "
        + issue_token(role="department_partner", org_path="/620400", department="public_security")
    }
    async with serve(create(settings, clock)) as url, httpx.AsyncClient(base_url=url) as http:
        await publish(settings, [*school_staff(), student("stu-p")])
        await _staff_loaded(settings)
        await publish(
            settings,
            [
                finding("stu-p", Category.DISABILITY, Severity.HIGH, recorded_at=clock.now()),
                finding("stu-q", Category.SAFETY_RISK, Severity.URGENT, recorded_at=clock.now()),
            ],
        )
        await wait_for(lambda: _count(http, dpf, 1), timeout=15)
        await wait_for(lambda: _count(http, ps, 1), timeout=15)
        d = (await http.get("/api/v1/referrals", headers=dpf)).json()["items"][0]["referral_id"]
        p = (await http.get("/api/v1/referrals", headers=ps)).json()["items"][0]["referral_id"]
        secret = "Zhang Wei, 13800138000, No. 5 Beijing Road"  # a note full of personal data stays here
        for step in ("acknowledge", "accept", "resolve"):
            r = await http.post(f"/api/v1/referrals/{d}/{step}", headers=dpf, json={"note": secret})
            assert r.status_code == 200
        for step in ("acknowledge", "decline"):
            r = await http.post(f"/api/v1/referrals/{p}/{step}", headers=ps, json={"note": secret})
            assert r.status_code == 200
        clock.advance(timedelta(days=4))  # the civil-affairs referral was never acknowledged
        messages = await _escalate_and_read(settings, clock)

    seen_types = {m["value"]["type"] for m in messages}
    assert seen_types == {s.type for s in PUBLIC if s.topic == REFERRAL}
    for m in messages:
        env = m["value"]
        assert set(env) <= CLOUDEVENTS, f"extra envelope fields: {set(env) - CLOUDEVENTS}"
        Envelope.model_validate(env)
        spec = registry.spec(env["type"])
        assert spec.public
        schema = spec.model.model_json_schema()
        data = env["data"]
        assert set(data) <= set(schema["properties"]), f"{env['type']}: fields beyond the contract"
        assert set(schema.get("required", [])) <= set(data)
        spec.model.model_validate(data)
        for field, value in data.items():
            assert not _denied(field), f"{env['type']}: {field}"
            assert "stu-" not in str(value), f"{env['type']}: {field} links to the child"
            assert secret not in str(value)
        assert len([x for x in data["org_path"].split("/") if x]) <= 3
        assert data["org_path"] == school()
        assert m["key"] == data["referral_id"] == env["subject"]
        assert "stu-" not in str(m["headers"])
        assert "13800138000" not in repr(m) and "Zhang" not in repr(m)  # the note's contents went nowhere


async def _count(http: httpx.AsyncClient, headers: dict[str, str], n: int) -> bool:
    r = await http.get("/api/v1/referrals", headers=headers)
    return r.status_code == 200 and len(r.json()["items"]) >= n


async def _escalate_and_read(settings: OutreachSettings, clock: ManualClock) -> list[dict[str, Any]]:
    """Run one scheduler pass on the service's schema, then read the whole public topic."""
    from shared import db

    pool = await db.create_pool(settings.database_url, settings.db_schema, min_size=1, max_size=2)
    try:
        assert await tick(pool, settings, clock) == (2, 1, 0, 0)  # both cases; the unacknowledged civil-affairs one
        await wait_for(lambda: pool.fetchval("SELECT count(*) = 0 FROM outbox"))
    finally:
        await pool.close()
    # 3 requested + ack/accept/resolve + ack/decline + 1 escalated
    return await read_topic(settings.kafka_bootstrap_servers, [settings.topic(t) for t in REFERRAL_TOPICS], expect=9)


async def _staff_loaded(settings: OutreachSettings) -> None:
    import asyncpg

    conn = await asyncpg.connect(settings.database_url)
    try:
        await wait_for(lambda: conn.fetchval(f'SELECT count(*) = 4 FROM "{settings.db_schema}".staff'), timeout=15)
    finally:
        await conn.close()
