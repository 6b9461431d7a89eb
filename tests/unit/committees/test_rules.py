"""Rules of the cooperation structure and of access (pure)."""

from __future__ import annotations

from datetime import date

import pytest

from services.committees.domain.rules import (
    Access,
    Conflict,
    RuleBroken,
    attendance_rate,
    can_write,
    check_active,
    check_dissolve,
    check_lecturer,
    check_member_eligible,
    check_one_active_committee,
    check_parent_school_unit,
    check_team_member,
    check_team_staff,
    check_team_unit,
    check_term,
    committee_level,
    family_scope,
    people_access,
    redact,
    staff_view,
)
from shared.auth import Principal, Role
from shared.contracts.committees import ParentSchoolKind, TeamRole


def who(role: Role, path: str, staff_id: str | None = None) -> Principal:
    return Principal(subject="x", roles=frozenset({role}), org_path=path, staff_id=staff_id)


def test_one_active_committee_per_unit():
    check_one_active_committee([])
    with pytest.raises(RuleBroken) as e:
        check_one_active_committee(["cm-1"])
    assert e.value.field == "org_unit_id" and "cm-1" in e.value.reason


@pytest.mark.parametrize(
    ("level", "expected"), [("district", "county"), ("school", "school"), ("grade", "grade"), ("class", "class")]
)
def test_committee_levels(level, expected):
    assert committee_level(level) == expected


def test_no_city_committee():
    with pytest.raises(RuleBroken):
        committee_level("city")


def test_member_must_be_guardian_of_a_student_inside_the_unit():
    unit = "/620400/620402/s0001/s0001-g1"
    check_member_eligible(unit, ["/620400/620402/s0001/s0001-g1/s0001-g1-c2"])
    check_member_eligible("/620400/620402/s0001", ["/620400/620402/s0002/x", "/620400/620402/s0001/g/c"])
    with pytest.raises(RuleBroken) as e:
        check_member_eligible(unit, ["/620400/620402/s0001/s0001-g10/c1"])  # prefix, but another grade
    assert e.value.field == "guardian_id"
    with pytest.raises(RuleBroken):
        check_member_eligible(unit, [])


def test_term_ends_after_it_starts():
    check_term(date(2026, 9, 1), None)
    check_term(date(2026, 9, 1), date(2027, 7, 1))
    with pytest.raises(RuleBroken):
        check_term(date(2026, 9, 1), date(2026, 9, 1))


@pytest.mark.parametrize(
    ("attended", "expected", "rate"), [(0, 0, None), (0, 10, 0.0), (7, 10, 0.7), (1, 3, 0.3333), (12, 10, 1.0)]
)
def test_attendance_rate(attended, expected, rate):
    assert attendance_rate(attended, expected) == rate


def test_people_access_by_role_and_subtree():
    s1 = "/620400/620402/s0001/s0001-g1/s0001-g1-c1"
    c = "s0001-g1-c1"
    assert people_access(who(Role.BUREAU_ADMIN, "/620400"), s1, c, frozenset()) == Access(True, True)
    assert people_access(who(Role.DISTRICT_ADMIN, "/620400/620402"), s1, c, frozenset()) == Access(True, True)
    assert people_access(who(Role.DISTRICT_ADMIN, "/620400/620403"), s1, c, frozenset()) == Access(False, False)
    assert people_access(who(Role.SCHOOL_ADMIN, "/620400/620402/s0002"), s1, c, frozenset()) == Access(False, False)
    teacher = who(Role.TEACHER, "/620400/620402/s0001", "t1")
    assert people_access(teacher, s1, c, frozenset({c})) == Access(True, True)
    assert people_access(teacher, s1, c, frozenset({"s0001-g1-c2"})) == Access(False, False)
    elsewhere = who(Role.TEACHER, "/620400/620402/s0002", "t1")  # the token must name the class's school
    assert people_access(elsewhere, s1, c, frozenset({c})) == Access(False, False)
    assert people_access(who(Role.AUDITOR, "/620400"), s1, c, frozenset()) == Access(True, False)
    assert people_access(who(Role.DEPARTMENT_PARTNER, "/620400"), s1, c, frozenset()) == Access(False, False)


def test_writes_need_an_admin_in_scope():
    assert can_write(who(Role.SCHOOL_ADMIN, "/620400/620402/s0001"), "/620400/620402/s0001/g")
    assert not can_write(who(Role.SCHOOL_ADMIN, "/620400/620402/s0001"), "/620400/620402/s00012")
    assert not can_write(who(Role.TEACHER, "/620400/620402/s0001"), "/620400/620402/s0001")
    assert not can_write(who(Role.AUDITOR, "/620400"), "/620400/620402")


def test_redact_drops_personal_fields():
    rec = {"student_id": "u", "name": "张三", "national_id": "x", "student_no": "G1", "class_id": "c", "phone": "1"}
    assert redact(rec, personal=False) == {"student_id": "u", "class_id": "c"}
    assert redact(rec, personal=True) == rec


def test_a_family_belongs_to_its_childrens_units_else_to_its_registrar_else_to_the_bureau():
    assert family_scope(["/c/d2/s2", "/c/d1/s1", "/c/d1/s1"], "/c/d9/s9") == ["/c/d1/s1", "/c/d2/s2"]
    assert family_scope([], "/c/d1/s1") == ["/c/d1/s1"]  # registered by a school admin, no child yet
    assert family_scope([], None) == []  # imported, no child: the bureau's alone


def test_a_committee_is_dissolved_once_and_not_before_it_was_formed():
    check_dissolve(date(2026, 9, 1), None, date(2026, 9, 1))  # the day it was formed
    check_dissolve(date(2026, 9, 1), None, date(2027, 7, 1))
    with pytest.raises(Conflict):
        check_dissolve(date(2026, 9, 1), date(2027, 1, 1), date(2027, 7, 1))  # already dissolved: 409
    with pytest.raises(RuleBroken) as e:
        check_dissolve(date(2026, 9, 1), None, date(2026, 8, 31))
    assert e.value.field == "dissolved_on"


def test_members_join_active_committees_only():
    check_active(None)
    with pytest.raises(Conflict):
        check_active(date(2027, 1, 1))


@pytest.mark.parametrize(
    ("kind", "allowed"),
    [
        (ParentSchoolKind.COUNTY, {"district"}),
        (ParentSchoolKind.SCHOOL, {"school"}),
        (ParentSchoolKind.ONLINE, {"city", "district", "school"}),
    ],
)
def test_parent_schools_belong_to_the_units_of_their_kind(kind, allowed):
    for level in ("city", "district", "school", "grade", "class"):
        if level in allowed:
            check_parent_school_unit(kind, level)
        else:
            with pytest.raises(RuleBroken) as e:
                check_parent_school_unit(kind, level)
            assert e.value.field == "org_unit_id"


def test_instructor_teams_belong_to_a_school_or_a_county():
    check_team_unit("school")
    check_team_unit("district")
    for level in ("city", "grade", "class"):
        with pytest.raises(RuleBroken) as e:
            check_team_unit(level)
        assert e.value.field == "org_unit_id"


def test_school_roles_in_a_team_are_staff_and_others_are_named():
    for role in (
        TeamRole.VICE_PRINCIPAL_IN_CHARGE,
        TeamRole.CLASS_TEACHER,
        TeamRole.MENTAL_HEALTH_TEACHER,
        TeamRole.IDEOLOGICAL_POLITICAL_TEACHER,
    ):
        check_team_member(role, "t1", None)
        with pytest.raises(RuleBroken) as e:
            check_team_member(role, None, "王老师")  # a name does not make a school role
        assert e.value.field == "staff_id"
    for role in (TeamRole.EXPERT_SCHOLAR, TeamRole.OUTSTANDING_PARENT):
        check_team_member(role, None, "李教授")
        check_team_member(role, "t1", None)  # staff may hold them too
        with pytest.raises(RuleBroken) as e:
            check_team_member(role, None, "")
        assert e.value.field == "name"


def test_a_team_member_on_the_staff_is_active_and_works_inside_the_teams_unit():
    team = "/620400/620402/s0001"
    check_team_staff("/620400/620402/s0001", team)
    check_team_staff("/620400/620402/s0001/g1/c1", team)
    for staff_path in (None, "/620400/620402/s00012", "/620400/620402"):  # departed; a school with a longer id; above
        with pytest.raises(RuleBroken) as e:
            check_team_staff(staff_path, team)
        assert e.value.field == "staff_id"


def test_a_lecturer_who_is_not_staff_is_named():
    check_lecturer("t1", None)
    check_lecturer(None, "张教授")
    with pytest.raises(RuleBroken) as e:
        check_lecturer(None, None)
    assert e.value.field == "name"


def test_staff_records_for_admins_and_colleagues_in_scope_without_personal_fields_for_auditors():
    row = {"staff_id": "t1", "org_path": "/620400/620402/s0001", "name": "王老师", "phone": "138"}
    assert staff_view(who(Role.SCHOOL_ADMIN, "/620400/620402/s0001"), row) == row
    assert staff_view(who(Role.TEACHER, "/620400/620402/s0001", "t2"), row) == row  # a colleague
    assert staff_view(who(Role.TEACHER, "/620400/620402/s0002", "t3"), row) is None  # another school
    assert staff_view(who(Role.AUDITOR, "/620400"), row) == {"staff_id": "t1", "org_path": "/620400/620402/s0001"}
    assert staff_view(who(Role.AUDITOR, "/620400/620403"), row) is None
    assert staff_view(who(Role.DEPARTMENT_PARTNER, "/620400"), row) is None
