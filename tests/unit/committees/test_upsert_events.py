"""The events the directory upserts publish, built without a model (`upserts.built`), are what the contracts write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.committees.store import upserts
from shared.contracts import committees as c
from shared.events import check_built

AT = (datetime(2026, 9, 1, 8, 30, 0, 123456, tzinfo=UTC), datetime(2026, 9, 1, 8, 30, tzinfo=UTC))
# An answer row's `data` as the statements build it (`jsonb_build_object`, decoded: jsonb orders keys by length).
DATA: dict[str, list[dict[str, Any]]] = {
    "org_units": [
        {
            "name": '白银区第一小学 "一小"',
            "level": "school",
            "org_path": "/620400/620402/s1",
            "parent_id": "620402",
            "org_unit_id": "s1",
            "school_type": "primary",
        },
        {
            "name": "白银市",
            "level": "city",
            "org_path": "/620400",
            "parent_id": None,
            "org_unit_id": "620400",
            "school_type": None,
        },
    ],
    "staff": [
        {
            "roles": ["class_teacher", "subject_teacher"],
            "org_path": "/620400/620402/s1",
            "staff_id": "t1",
            "class_ids": ["s1-g1-c1"],
            "head_class_id": "s1-g1-c1",
        },
        {"roles": ["principal"], "org_path": "/620400", "staff_id": "t2", "class_ids": [], "head_class_id": None},
    ],
    "students": [
        {
            "class_id": "s1-g1-c1",
            "org_path": "/620400/620402/s1/s1-g1/s1-g1-c1",
            "family_id": "f\\1",
            "student_id": "0b0e5c9e-5d1c-4a43-8c7e-1f3b0b8d9a10",
        },
    ],
    "families": [
        {
            "family_id": "f1",
            "student_ids": ["a", "b"],
            "guardian_ids": [],
            "parents_work_away": True,
            "living_arrangement": "grandparents",
        },
        {
            "family_id": "f2",
            "student_ids": [],
            "guardian_ids": ["g1"],
            "parents_work_away": False,
            "living_arrangement": "both_parents",
        },
    ],
}


@pytest.mark.parametrize("entity", sorted(upserts.EVENTS))
def test_each_upsert_event_is_built_as_its_contract_writes_it(entity):
    for model in upserts.EVENTS[entity]:
        for data in DATA[entity]:
            for at in (*AT, AT[0].astimezone(timezone(timedelta(hours=8)))):
                payload = upserts.built(model, dict(sorted(data.items())), at)
                check_built(payload)  # the fields validate, and their JSON is the model's own, byte for byte
                assert payload.fields == model.model_validate({**data, "occurred_at": at}).model_dump()


def test_every_upserted_entity_with_events_has_sample_answers():
    assert set(upserts.EVENTS) == set(DATA)
    assert {c.FamilyRegistered, c.FamilyChanged} == set(upserts.EVENTS["families"])
