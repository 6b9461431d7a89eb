"""Holes of issue 13: `_` in org ids as a LIKE wildcard, and writes that re-link data into another school."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.access import city
from tests.integration.committees.conftest import BUREAU, auth

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def svc(module_svc):
    return module_svc


@pytest.fixture(scope="module")
async def world(svc) -> dict[str, Any]:
    """The tiny city imported; students and families by student_no / family_no."""
    await svc.run_import(body=city.city_json())
    r = await svc.http.get("/api/v1/students", params={"limit": 500}, headers=BUREAU)
    students = {s["student_no"]: s for s in r.json()["items"]}
    return {"students": students, "family": {s["student_no"]: s["family_id"] for s in students.values()}}


async def test_an_underscore_in_a_school_id_matches_no_other_school(svc, world) -> None:
    """Today an admin of `s_01` also receives `sx01`'s students and staff (`_` taken as a LIKE wildcard)."""
    for token_path, school in ((city.OWN, "s_01"), (city.PERCENT, None)):
        admin = auth("school_admin", token_path)
        for route in ("/api/v1/students", "/api/v1/staff"):
            r = await svc.http.get(route, params={"limit": 500}, headers=admin)
            assert r.status_code == 200, r.text
            paths = {i["org_path"] for i in r.json()["items"]}
            assert all(p.startswith(f"{token_path}/") or p == token_path for p in paths), (route, token_path, paths)
            assert bool(paths) is (school is not None)


async def test_relinking_a_student_to_another_schools_family_is_forbidden(svc, world) -> None:
    """Today the admin of `s_01` re-links their student to `sx01`'s family, then reads and changes its guardians."""
    admin = auth("school_admin", city.OWN)
    mine = world["students"]["N-s_01-1"]
    theirs = world["family"]["N-sx01-1"]
    r = await svc.http.patch(
        f"/api/v1/students/{mine['student_id']}", json={"family_id": theirs}, headers={**admin, "If-Match": "*"}
    )
    assert r.status_code == 403, r.text
    assert (await svc.http.get(f"/api/v1/families/{theirs}", headers=admin)).status_code == 403
    guardian = {"guardian_no": "P-evil", "name": "Evil", "relation": "other"}
    r = await svc.http.post(f"/api/v1/families/{theirs}/guardians", json=guardian, headers=admin)
    assert r.status_code == 403, r.text
    # the family still has only its own children
    fam = (await svc.http.get(f"/api/v1/families/{theirs}", headers=BUREAU)).json()
    assert {s["student_id"] for s in fam["students"]} == {
        world["students"]["N-sx01-1"]["student_id"],
        world["students"]["N-sx01-2"]["student_id"],
    }


async def test_registering_a_student_into_another_schools_family_is_forbidden(svc, world) -> None:
    admin = auth("school_admin", city.OWN)
    body = {
        "student_no": "N-new-1",
        "name": "New",
        "birth_date": "2016-01-01",
        "class_id": city.class_id(city.OWN),
        "family_id": world["family"]["N-sx01-1"],
    }
    r = await svc.http.post("/api/v1/students", json=body, headers=admin)
    assert r.status_code == 403, r.text
    r = await svc.http.post("/api/v1/students", json={**body, "family_id": world["family"]["N-s_01-1"]}, headers=admin)
    assert r.status_code == 201, r.text


async def test_a_family_of_two_schools_needs_write_scope_over_both(svc, world) -> None:
    """Adding a guardian or changing a family touches every school its children attend."""
    shared = world["family"]["N-s_01-shared"]
    admin = auth("school_admin", city.OWN)
    guardian = {"guardian_no": "P-new", "name": "Aunt", "relation": "other"}
    assert (
        await svc.http.post(f"/api/v1/families/{shared}/guardians", json=guardian, headers=admin)
    ).status_code == 403
    r = await svc.http.patch(
        f"/api/v1/families/{shared}", json={"address": "elsewhere"}, headers={**admin, "If-Match": "*"}
    )
    assert r.status_code == 403, r.text
    # reading it stays possible through the admin's own child
    assert (await svc.http.get(f"/api/v1/families/{shared}", headers=admin)).status_code == 200
    district = auth("district_admin", city.CITY)
    r = await svc.http.post(f"/api/v1/families/{shared}/guardians", json=guardian, headers=district)
    assert r.status_code == 201, r.text


async def test_moving_a_student_needs_scope_over_both_classes(svc, world) -> None:
    mine = world["students"]["N-s_01-2"]
    r = await svc.http.patch(
        f"/api/v1/students/{mine['student_id']}",
        json={"class_id": city.class_id(city.SIBLING)},
        headers={**auth("school_admin", city.OWN), "If-Match": "*"},
    )
    assert r.status_code == 403, r.text
    theirs = world["students"]["N-sx01-2"]
    r = await svc.http.patch(
        f"/api/v1/students/{theirs['student_id']}",
        json={"class_id": city.class_id(city.OWN)},
        headers={**auth("school_admin", city.OWN), "If-Match": "*"},
    )
    assert r.status_code == 403, r.text
    r = await svc.http.patch(
        f"/api/v1/students/{mine['student_id']}",
        json={"class_id": city.class_id(city.SIBLING)},
        headers={**auth("district_admin", city.DISTRICT), "If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["org_path"] == f"{city.SIBLING}/sx01-g1/sx01-g1-c1"


async def test_a_family_without_children_belongs_to_no_school(svc, world) -> None:
    """Today every admin of any school reads a family whose children left (guardians' names and phones)."""
    body = {"family_no": "F-empty", "parents_work_away": False, "living_arrangement": "both_parents"}
    r = await svc.http.post("/api/v1/families", json=body, headers=auth("school_admin", city.OWN))
    assert r.status_code == 201, r.text
    family_id = r.json()["family_id"]
    for outsider in (auth("school_admin", city.FAR), auth("district_admin", city.OTHER_DISTRICT)):
        assert (await svc.http.get(f"/api/v1/families/{family_id}", headers=outsider)).status_code == 403
        guardian = {"guardian_no": "P-empty", "name": "X", "relation": "other"}
        r = await svc.http.post(f"/api/v1/families/{family_id}/guardians", json=guardian, headers=outsider)
        assert r.status_code == 403, r.text
    assert (await svc.http.get(f"/api/v1/families/{family_id}", headers=BUREAU)).status_code == 200
