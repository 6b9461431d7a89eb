"""Bulk import through HTTP: exact counts, planted bad rows with their row numbers, idempotent re-import."""

from __future__ import annotations

from collections import Counter

import pytest

from demo import citygen

pytestmark = pytest.mark.integration


async def test_csv_import_of_a_small_city(svc, small_city):
    city = small_city
    texts = citygen.csv_texts(city)
    job = await svc.run_import(csv=texts)
    counts = city.counts()
    for entity, n in counts.items():
        assert job["counts"][entity] == {"received": n, "created": n, "updated": 0, "unchanged": 0, "rejected": 0}
    assert job["error_count"] == 0
    await svc.drained()
    events = await svc.events()
    by_type = Counter(e["type"] for e in events)
    assert by_type == {
        "committees.org_unit.registered.v1": counts["org_units"],
        "committees.staff.registered.v1": counts["staff"],
        "committees.student.registered.v1": counts["students"],
        "committees.family.registered.v1": counts["families"],
    }
    assert job["events"] == len(events)
