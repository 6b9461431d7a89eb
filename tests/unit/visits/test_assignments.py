"""Assignment generation: every family once, class teachers first, balanced, shared families visited once."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pydantic
import pytest

from services.visits.domain.planning import (
    Family,
    StudentPlace,
    Teacher,
    campaign_refuses,
    generate_assignments,
    period_ok,
    planning_groups,
    school_path,
)
from services.visits.schemas import CampaignIn

SCHOOL = "/620400/620402/s1"


def cls(n: int, school: str = SCHOOL) -> tuple[str, str]:
    """(class_id, class_path) of class n in a school."""
    return f"{school.rsplit('/', 1)[1]}-c{n}", f"{school}/g1/{school.rsplit('/', 1)[1]}-c{n}"


def family(fid: str, *classes: int, school: str = SCHOOL) -> Family:
    return Family(fid, tuple(StudentPlace(f"{fid}-k{i}", *cls(c, school)) for i, c in enumerate(classes)))


def school(
    n_classes: int, families_per_class: int, subject_teachers: int, school: str = SCHOOL
) -> tuple[list[Family], list[Teacher]]:
    """A school: one class teacher per class, subject teachers teaching two classes each."""
    sid = school.rsplit("/", 1)[1]
    fams = [family(f"{sid}-f{c}-{i}", c, school=school) for c in range(n_classes) for i in range(families_per_class)]
    ids = [cls(c, school)[0] for c in range(n_classes)]
    teachers = [Teacher(f"{sid}-head{c}", school, ids[c], frozenset({ids[c]})) for c in range(n_classes)]
    teachers += [
        Teacher(f"{sid}-sub{t}", school, None, frozenset({ids[t % n_classes], ids[(t + 1) % n_classes]}))
        for t in range(subject_teachers)
    ]
    return fams, teachers


def test_every_family_in_scope_is_covered_exactly_once():
    fams, teachers = school(6, 37, 15)
    plan = generate_assignments(fams, teachers, 10)
    assert sorted(a.family_id for a in plan.assignments) == sorted(f.family_id for f in fams)
    assert plan.unassigned == []
    assert {a.teacher_id for a in plan.assignments} <= {t.staff_id for t in teachers}


def test_class_teachers_get_families_of_their_own_class_first():
    fams, teachers = school(4, 30, 8)
    plan = generate_assignments(fams, teachers, 10)
    by_family = {f.family_id: f for f in fams}
    for a in plan.assignments:
        if "-head" in a.teacher_id:
            head = next(t for t in teachers if t.staff_id == a.teacher_id)
            assert head.head_class_id in {s.class_id for s in by_family[a.family_id].students}
    loads = plan.loads()
    assert all(loads[f"s1-head{c}"] == 10 for c in range(4))


def test_nobody_is_above_target_while_a_colleague_is_below_it():
    fams, teachers = school(5, 30, 10)  # 150 families, 15 teachers: exactly 10 each
    loads = generate_assignments(fams, teachers, 10).loads()
    assert sorted(loads.values()) == [10] * 15


def test_overflow_is_spread_evenly_when_a_school_has_too_few_teachers():
    fams, teachers = school(3, 45, 4)  # 135 families, 7 teachers, target 10
    loads = generate_assignments(fams, teachers, 10).loads()
    assert sum(loads.values()) == 135
    assert max(loads.values()) - min(loads.values()) <= 1
    assert max(loads.values()) == 20  # ceil(135 / 7)


def test_small_classes_leave_class_teachers_below_target_and_they_are_filled_by_others():
    fams, teachers = school(4, 5, 0)  # 20 families, 4 class teachers, target 10
    loads = generate_assignments(fams, teachers, 10).loads()
    assert sorted(loads.values()) == [5, 5, 5, 5]  # each heads a class of 5 and nobody else needs them


def test_a_family_with_children_in_several_classes_is_visited_once_by_one_of_their_class_teachers():
    fams, teachers = school(2, 3, 0)
    shared = family("shared", 0, 1)
    plan = generate_assignments([*fams, shared], teachers, 10)
    visits = [a for a in plan.assignments if a.family_id == "shared"]
    assert len(visits) == 1
    assert visits[0].teacher_id in {"s1-head0", "s1-head1"}
    assert visits[0].student_ids == ("shared-k0", "shared-k1")
    assert visits[0].org_path == cls(0)[1]
    assert Counter(a.family_id for a in plan.assignments)["shared"] == 1


def test_a_shared_family_goes_to_the_less_loaded_class_teacher():
    busy = [family(f"b{i}", 0) for i in range(9)]
    teachers = [Teacher("head0", SCHOOL, cls(0)[0]), Teacher("head1", SCHOOL, cls(1)[0])]
    plan = generate_assignments([*busy, family("shared", 0, 1)], teachers, 10)
    assert {a.family_id: a.teacher_id for a in plan.assignments}["shared"] == "head1"


def test_families_stay_within_their_school_and_schools_without_teachers_are_reported():
    a_fams, a_teachers = school(2, 20, 2, "/620400/620402/sa")
    b_fams, _ = school(1, 7, 0, "/620400/620402/sb")
    plan = generate_assignments([*a_fams, *b_fams], a_teachers, 10)
    assert sorted(plan.unassigned) == sorted(f.family_id for f in b_fams)
    assert all(a.teacher_id.startswith("sa-") for a in plan.assignments)
    assert len(plan.assignments) == 40


def test_generation_is_deterministic_whatever_the_input_order():
    fams, teachers = school(5, 33, 9)
    first = generate_assignments(fams, teachers, 10)
    rng = random.Random(7)
    rng.shuffle(fams)
    rng.shuffle(teachers)
    again = generate_assignments(fams, teachers, 10)
    assert {(a.family_id, a.teacher_id) for a in first.assignments} == {
        (a.family_id, a.teacher_id) for a in again.assignments
    }


def test_a_district_scale_plan_is_complete_and_balanced():
    fams: list[Family] = []
    teachers: list[Teacher] = []
    for s in range(20):
        f, t = school(12, 40, 28, f"/620400/620402/s{s:03d}")
        fams += f
        teachers += t
    plan = generate_assignments(fams, teachers, 10)
    loads = plan.loads()
    assert len(plan.assignments) == len(fams) == 9600
    assert len({a.family_id for a in plan.assignments}) == len(fams)
    # 480 families and 40 teachers per school: nobody can stay at 10; all end at 12, none further above.
    assert set(loads.values()) == {12}
    assert len(loads) == len(teachers)


def test_a_campaign_ends_on_or_after_its_first_day():
    assert period_ok(date(2026, 3, 1), date(2026, 3, 31))
    assert period_ok(date(2026, 3, 1), date(2026, 3, 1))  # a one-day campaign
    assert not period_ok(date(2026, 3, 2), date(2026, 3, 1))
    body = {"name": "spring", "org_path": "/620400", "starts_on": "2026-03-02", "ends_on": "2026-03-01"}
    with pytest.raises(pydantic.ValidationError) as refused:
        CampaignIn.model_validate(body)
    assert [e["loc"] for e in refused.value.errors()] == [("ends_on",)]  # the 422 names /ends_on


def test_a_campaign_is_launched_from_draft_closed_once_launched_and_its_assignments_change_only_while_launched():
    assert campaign_refuses("draft", "launch") is None
    assert campaign_refuses("launched", "close") is None
    assert campaign_refuses("launched", "assign") is None
    assert campaign_refuses("launched", "launch") == "the campaign is launched; only a draft can be launched"
    assert campaign_refuses("closed", "launch") == "the campaign is closed; only a draft can be launched"
    assert campaign_refuses("draft", "close") == "the campaign is draft; only a launched campaign can be closed"
    assert campaign_refuses("closed", "close") is not None
    for status in ("draft", "closed"):
        assert campaign_refuses(status, "assign") == (
            f"the campaign is {status}; assignments change only while it is launched"
        )


def test_a_leavers_families_go_to_colleagues_by_the_same_rules_counting_their_current_loads():
    # Class 0's teacher left: their 4 families are handed over in a running campaign. Of class 0's subject teachers
    # one already has 9 families, the other 2: the least loaded takes them (the other class's head is at target).
    fams = [family(f"f{i}", 0) for i in range(4)]
    ids = [cls(c)[0] for c in range(2)]
    busy = Teacher("sub-busy", SCHOOL, None, frozenset({ids[0]}))
    free = Teacher("sub-free", SCHOOL, None, frozenset({ids[0], ids[1]}))
    head1 = Teacher("head1", SCHOOL, ids[1], frozenset({ids[1]}))
    plan = generate_assignments(fams, [busy, free, head1], 10, loads={"sub-busy": 9, "sub-free": 2, "head1": 10})
    assert Counter(a.teacher_id for a in plan.assignments) == {"sub-free": 4}
    assert plan.unassigned == []
    # Without the loads the planner would give them out as if nobody had any family yet.
    fresh = generate_assignments(fams, [busy, free, head1], 10)
    assert Counter(a.teacher_id for a in fresh.assignments) == {"sub-busy": 2, "sub-free": 2}


def by_groups(families: list[Family], teachers: list[Teacher], size: int) -> tuple[list, list[str], int]:
    """What a launch does: schools into `planning_groups` (students per school; the schools of each family with
    children in several and a head's school with their class's), then one plan per group (its families, and the
    teachers of its schools), the unassigned families in (first school, family) order. (assignments, unassigned,
    groups)"""
    sizes: Counter[str] = Counter(school_path(s.class_path) for f in families for s in f.students)
    class_school = {s.class_id: school_path(s.class_path) for f in families for s in f.students}
    links = [f.schools for f in families if len(f.schools) > 1]
    links += [[t.school_path, class_school[t.head_class_id]] for t in teachers if t.head_class_id in class_school]
    groups = planning_groups(sizes, links, size)
    assignments, unassigned = [], []
    for g in sorted(set(groups.values())):
        fams = [f for f in families if groups[f.schools[0]] == g]
        assert all(groups[x] == g for f in fams for x in f.schools)  # a family's schools are in one group
        plan = generate_assignments(fams, [t for t in teachers if groups.get(t.school_path) == g], 10)
        assignments += plan.assignments
        first = {f.family_id: f.schools[0] for f in fams}
        unassigned += sorted((first[f], f) for f in plan.unassigned)
    return assignments, [f for _, f in sorted(unassigned)], len(set(groups.values()))


@pytest.mark.parametrize("seed", range(20))
def test_planning_school_groups_one_at_a_time_gives_the_whole_scopes_plan(seed: int):
    # A random district: schools of random sizes, some without teachers, families with children in two schools,
    # class teachers heading a class of another school, subject teachers over capacity: the plan group by group
    # (groups of about 60 students) is the whole district's, assignment for assignment, unassigned in order.
    rng = random.Random(seed)
    paths = [f"/620400/620402/s{n:02d}" for n in range(12)]
    families: list[Family] = []
    teachers: list[Teacher] = []
    for path in paths:
        fams, staff = school(rng.randint(1, 4), rng.randint(3, 15), rng.randint(0, 3), path)
        families += fams
        teachers += staff if rng.random() < 0.85 else []
    for n in range(rng.randint(0, 6)):  # families with a child in each of two schools
        a, b = rng.sample(paths, 2)
        families.append(Family(f"x{n}", (StudentPlace(f"x{n}-a", *cls(0, a)), StudentPlace(f"x{n}-b", *cls(0, b)))))
    for n in range(rng.randint(0, 3)):  # a teacher of one school heading a class of another
        a, b = rng.sample(paths, 2)
        teachers.append(Teacher(f"cross{n}", a, cls(0, b)[0], frozenset({cls(0, b)[0]})))
    rng.shuffle(families)
    whole = generate_assignments(families, teachers, 10)
    assignments, unassigned, n_groups = by_groups(families, teachers, 60)
    assert n_groups > 1
    assert sorted(assignments) == sorted(whole.assignments)
    assert unassigned == whole.unassigned


def test_linked_schools_share_a_group_and_groups_close_at_their_size():
    sizes = {"/c/d/a": 5, "/c/d/b": 5, "/c/d/c": 5, "/c/d/d": 5, "/c/d/e": 5}
    groups = planning_groups(sizes, [["/c/d/a", "/c/d/e"], ["/c/d/t", "/c/d/c"]], 10)
    assert groups == {"/c/d/a": 0, "/c/d/e": 0, "/c/d/b": 1, "/c/d/c": 1, "/c/d/t": 1, "/c/d/d": 2}
    assert set(planning_groups(sizes, [], 1_000).values()) == {0}
