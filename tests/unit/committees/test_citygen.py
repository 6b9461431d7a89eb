"""The synthetic city: deterministic, with the five districts, every school type and realistic families."""

from __future__ import annotations

from collections import Counter

from demo import citygen


def test_deterministic_and_scaled():
    a = citygen.generate(scale=0.01, seed=5)
    b = citygen.generate(scale=0.01, seed=5)
    assert citygen.csv_texts(a) == citygen.csv_texts(b)
    assert a.counts()["students"] == 2000
    other = citygen.generate(scale=0.01, seed=6)  # another seed: as many students, other people
    assert other.counts()["students"] == 2000
    assert [s.name for s in other.students] != [s.name for s in a.students]


def test_city_shape():
    city = citygen.generate(scale=0.05, seed=1)
    districts = {u.org_unit_id: u.name for u in city.org_units if u.level == "district"}
    assert districts == {
        "620402": "白银区",
        "620403": "平川区",
        "620421": "靖远县",
        "620422": "会宁县",
        "620423": "景泰县",
    }
    types = Counter(u.school_type for u in city.org_units if u.level == "school")
    assert set(types) == {
        "kindergarten",
        "primary",
        "junior_secondary",
        "senior_secondary",
        "nine_year",
        "special_education",
    }
    roles = Counter(r for s in city.staff for r in s.roles)
    for r in ("class_teacher", "mental_health_teacher", "ideological_political_teacher", "vice_principal", "principal"):
        assert roles[r] > 0
    away = sum(f.parents_work_away for f in city.families) / len(city.families)
    assert 0.15 <= away <= 0.25
    families = {f.family_no for f in city.families}
    assert all(s.family_no in families for s in city.students)
    assert {g.family_no for g in city.guardians} == families
    json_city = citygen.to_json(city)
    assert len(json_city["students"]) == len(city.students)


def test_every_student_has_their_own_resident_id_in_a_large_city():
    """A resident ID is one person's: the directory refuses a second student with the same one, so the generated
    city must not draw the same number twice (it did from about 50 k students on: random sequence numbers)."""
    city = citygen.generate(scale=0.5, seed=1)  # 100 k students: the old random draw repeated 242 numbers
    ids = [s.national_id for s in city.students]
    assert len(set(ids)) == len(ids) == 100_000
    odd = {s.national_id[16] in "13579" for s in city.students if s.gender == "M"}
    even = {s.national_id[16] in "02468" for s in city.students if s.gender == "F"}
    assert odd == even == {True}  # the 17th digit still says the gender
