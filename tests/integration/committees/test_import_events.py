"""The directory upserts write their events in SQL (`events.envelope_sql`): each envelope must be the kit's own
(`events.envelope_json` of the contract model), byte for byte, for every event type they write, registered and
changed, with awkward text and empty lists and nulls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.committees.store import upserts
from shared import db, events, outbox
from shared.events import registry

pytestmark = pytest.mark.integration

AT = datetime(2026, 12, 2, 11, 30, 15, 123456, tzinfo=UTC)
NAME = 'Ü "quoted" back\\slash 白银区 \U0001f600 / end'  # what a JSON writer must escape, and what it must not


def org_unit(uid: str, parent: str | None, level: str, path: str, name: str, school_type: str | None = None) -> dict:
    return {
        "org_unit_id": uid,
        "parent_id": parent,
        "level": level,
        "org_path": path,
        "name": name,
        "school_type": school_type,
    }


ORG_UNITS = [
    org_unit("c1", None, "city", "/c1", NAME),
    org_unit("d1", "c1", "district", "/c1/d1", "区"),
    org_unit("s1", "d1", "school", "/c1/d1/s1", "学校", "primary"),
    org_unit("k1", "s1", "class", "/c1/d1/s1/k1", "一班"),
]
STAFF = [
    {
        "staff_id": "t1",
        "name": "老师",
        "gender": None,
        "phone": None,
        "org_unit_id": "s1",
        "org_path": "/c1/d1/s1",
        "roles": ["class_teacher", "mental_health_teacher"],
        "class_ids": ["k1"],
        "head_class_id": "k1",
    },
    {
        "staff_id": "t2",
        "name": "校长",
        "gender": "F",
        "phone": None,
        "org_unit_id": "s1",
        "org_path": "/c1/d1/s1",
        "roles": ["principal"],
        "class_ids": [],
        "head_class_id": None,
    },
]
FAMILIES = [
    {"family_no": "f1", "parents_work_away": True, "living_arrangement": "grandparents", "address": "x"},
    {"family_no": "f2", "parents_work_away": False, "living_arrangement": "both_parents", "address": None},
]
GUARDIANS = [
    {
        "guardian_no": "g1",
        "family_no": "f1",
        "name": "奶奶",
        "relation": "grandmother",
        "phone": None,
        "is_primary": True,
        "works_away": False,
    }
]
STUDENTS = [
    {
        "student_no": "p1",
        "name": "学生",
        "gender": None,
        "birth_date": datetime(2015, 3, 1).date(),
        "national_id": None,
        "class_id": "k1",
        "org_path": "/c1/d1/s1/k1",
        "family_no": "f1",
    }
]


async def test_every_event_the_upserts_write_is_the_kits_envelope_byte_for_byte(svc, monkeypatch):
    call = events.envelope_call("corr-1", None)
    monkeypatch.setattr(events, "envelope_call", lambda *_: call)  # one time for both writers
    monkeypatch.setattr(outbox, "envelope_call", lambda *_: call)
    conn = await db.connect(svc.settings.database_url, svc.settings.db_schema)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await upserts.insert_stage_tables(conn)
            written = 0
            for entity, rows in [
                ("org_units", ORG_UNITS),
                ("staff", STAFF),
                ("families", FAMILIES),
                ("guardians", GUARDIANS),
                ("students", STUDENTS),
            ]:
                written += (await upserts.upsert_entity(conn, entity, rows, AT))[2]
            written += await upserts.insert_family_events(conn, AT)
            # the same records changed: changed events of every kind
            renamed = {**ORG_UNITS[0], "name": NAME + "\t2"}
            changed_units = [renamed, {**ORG_UNITS[2], "school_type": "junior_secondary"}]
            written += (await upserts.upsert_entity(conn, "org_units", changed_units, AT))[2]
            written += (await upserts.upsert_entity(conn, "staff", [{**STAFF[1], "roles": ["vice_principal"]}], AT))[2]
            moved = {**STUDENTS[0], "family_no": "f2"}
            written += (await upserts.upsert_entity(conn, "students", [moved], AT))[2]
            written += await upserts.insert_family_events(conn, AT)
            rows = await conn.fetch(
                "SELECT event_id::text, topic, key, type, envelope::text AS envelope, headers::text AS headers "
                "FROM outbox ORDER BY id"
            )
        finally:
            await tx.rollback()
    finally:
        await conn.close()

    assert written == len(rows)
    seen: list[str] = []
    for r in rows:
        env: dict[str, Any] = orjson.loads(r["envelope"])
        spec = registry.spec(r["type"])
        payload = spec.model.model_validate(env["data"])
        [want] = events.envelope_json([payload], [r["event_id"]], correlation_id="corr-1", causation_id=None)
        assert r["envelope"] == want
        assert (r["topic"], r["key"]) == (spec.topic_for(payload), spec.key(payload))
        assert orjson.loads(r["headers"]).keys() == {"traceparent"}
        seen.append(r["type"])
    assert seen == [
        *["committees.org_unit.registered.v1"] * 4,  # parents first
        *["committees.staff.registered.v1"] * 2,
        "committees.student.registered.v1",
        *["committees.family.registered.v1"] * 2,
        *["committees.org_unit.changed.v1"] * 2,
        "committees.staff.changed.v1",
        "committees.student.changed.v1",
        *["committees.family.changed.v1"] * 2,  # the family the student left and the one they joined
    ]
    facts = [(r["type"], orjson.loads(r["envelope"])["data"]) for r in rows if r["type"].startswith("committees.fam")]
    members = sorted((t.split(".")[2], len(f["student_ids"]), len(f["guardian_ids"])) for t, f in facts)
    assert members == [("changed", 0, 1), ("changed", 1, 0), ("registered", 0, 0), ("registered", 1, 1)]
