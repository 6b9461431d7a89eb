"""The outreach rules, without I/O: which findings open cases, risk, deadlines, carers, escalation, referrals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.outreach import domain
from services.outreach.domain import Carer, StaffMember
from services.outreach.settings import OutreachSettings, Rules
from shared.auth import Role
from shared.contracts.common import Category as C
from shared.contracts.common import Department as D
from shared.contracts.common import Severity as S
from shared.contracts.common import StaffRole as R

RULES = Rules()
CLASS = "/620400/620402/s001/g3/c2"
SCHOOL, DISTRICT, CITY = "/620400/620402/s001", "/620400/620402", "/620400"


def staff(sid: str, *roles: R, at: str = SCHOOL, head: str | None = None) -> StaffMember:
    return StaffMember(sid, frozenset(roles), at, head)


def assign(roles: list[R], members: list[StaffMember]) -> list[Carer]:
    """Carers for a child in CLASS who has none yet, from these staff."""
    return domain.assign_carers(domain.Candidates(roles, frozenset(), CLASS, domain.CandidatePool(members)), RULES)


def pick(role: R, members: list[StaffMember]) -> Carer | None:
    """The carer for one role of a child in CLASS, from these staff."""
    return domain.choose_carer(RULES, role, CLASS, domain.CandidatePool(members))


@pytest.mark.parametrize(
    ("category", "severity", "opens"),
    [
        (C.LEFT_BEHIND, S.LOW, True),
        (C.ORPHANED_OR_UNACCOMPANIED, S.LOW, True),
        (C.DISABILITY, S.MEDIUM, True),
        (C.FAMILY_HARDSHIP, S.LOW, True),
        (C.MENTAL_HEALTH, S.HIGH, True),
        (C.SAFETY_RISK, S.URGENT, True),
        (C.LEARNING_DIFFICULTY, S.HIGH, True),
        (C.MENTAL_HEALTH, S.MEDIUM, False),
        (C.LEARNING_DIFFICULTY, S.LOW, False),
        (C.FAMILY_EDUCATION_NEED, S.MEDIUM, False),
        (C.HEALTH_NEED, S.MEDIUM, False),
    ],
)
def test_which_findings_open_cases(category, severity, opens):
    assert domain.opens_case(RULES, category, severity) is opens


def test_opening_threshold_is_configurable():
    rules = Rules(open_case_min_severity=S.MEDIUM, special_group_categories=[C.LEFT_BEHIND])
    assert domain.opens_case(rules, C.MENTAL_HEALTH, S.MEDIUM)
    assert not domain.opens_case(rules, C.DISABILITY, S.LOW)


def test_special_group_of_a_category():
    assert domain.special_group(RULES, C.LEFT_BEHIND) == "left_behind"
    assert domain.special_group(RULES, C.MENTAL_HEALTH) is None


@pytest.mark.parametrize(
    ("severities", "categories", "risk"),
    [
        ([S.LOW], [C.LEFT_BEHIND], S.LOW),
        ([S.LOW, S.HIGH], [C.LEFT_BEHIND, C.MENTAL_HEALTH], S.HIGH),
        ([S.MEDIUM], [C.LEFT_BEHIND, C.MENTAL_HEALTH, C.HEALTH_NEED], S.HIGH),
        ([S.HIGH], [C.LEFT_BEHIND, C.MENTAL_HEALTH, C.HEALTH_NEED, C.DISABILITY], S.URGENT),
        ([S.URGENT], [C.LEFT_BEHIND, C.MENTAL_HEALTH, C.HEALTH_NEED], S.URGENT),  # capped
        ([S.LOW], [C.LEFT_BEHIND, C.LEFT_BEHIND, C.LEFT_BEHIND], S.LOW),  # distinct categories count
    ],
)
def test_risk_level_is_the_highest_severity_raised_for_many_categories(severities, categories, risk):
    assert domain.risk_level(RULES, severities, categories) == risk


def test_risk_raise_is_configurable():
    cats = [C.LEFT_BEHIND, C.MENTAL_HEALTH, C.HEALTH_NEED]
    assert domain.risk_level(Rules(risk_raise_category_count=0), [S.LOW], cats) == S.LOW
    assert domain.risk_level(Rules(risk_raise_category_count=2), [S.LOW], cats[:2]) == S.MEDIUM


@pytest.mark.parametrize(("severity", "hours"), [(S.URGENT, 24), (S.HIGH, 72), (S.MEDIUM, 7 * 24), (S.LOW, 30 * 24)])
def test_first_contact_deadlines(severity, hours):
    recorded = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert domain.contact_due(RULES, severity, recorded) == recorded + timedelta(hours=hours)


def test_escalation_repeat_defaults_to_the_severity_deadline():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert domain.next_escalation_due(RULES, S.HIGH, now) == now + timedelta(hours=72)
    assert domain.next_escalation_due(Rules(escalation_repeat_hours=6), S.HIGH, now) == now + timedelta(hours=6)


def test_carer_roles_by_category_and_severity():
    assert domain.carer_roles(RULES, C.MENTAL_HEALTH, S.HIGH) == [R.MENTAL_HEALTH_TEACHER]
    assert domain.carer_roles(RULES, C.LEFT_BEHIND, S.LOW) == [R.CLASS_TEACHER]
    assert domain.carer_roles(RULES, C.SAFETY_RISK, S.HIGH) == [R.CLASS_TEACHER]
    assert domain.carer_roles(RULES, C.SAFETY_RISK, S.URGENT) == [R.CLASS_TEACHER, R.VICE_PRINCIPAL]


DIRECTORY = [
    staff("t-head", R.CLASS_TEACHER, R.SUBJECT_TEACHER, head="c2"),
    staff("t-other", R.CLASS_TEACHER, head="c9"),
    staff("mh-1", R.MENTAL_HEALTH_TEACHER),
    staff("vp-1", R.VICE_PRINCIPAL),
    staff("p-1", R.PRINCIPAL),
]


def test_class_teacher_is_the_head_of_the_childs_class():
    assert pick(R.CLASS_TEACHER, DIRECTORY) == Carer("t-head", R.CLASS_TEACHER, SCHOOL)


def test_mental_health_goes_to_the_schools_mental_health_teacher():
    assert pick(R.MENTAL_HEALTH_TEACHER, DIRECTORY) == Carer("mh-1", R.MENTAL_HEALTH_TEACHER, SCHOOL)


def test_urgent_safety_risk_gets_class_teacher_and_vice_principal():
    roles = domain.carer_roles(RULES, C.SAFETY_RISK, S.URGENT)
    assert assign(roles, DIRECTORY) == [
        Carer("t-head", R.CLASS_TEACHER, SCHOOL),
        Carer("vp-1", R.VICE_PRINCIPAL, SCHOOL),
    ]


def test_missing_class_teacher_falls_back_to_vice_principal_then_principal():
    no_head = [s for s in DIRECTORY if s.staff_id != "t-head"]
    assert pick(R.CLASS_TEACHER, no_head) == Carer("vp-1", R.CLASS_TEACHER, SCHOOL)
    no_vp = [s for s in no_head if s.staff_id != "vp-1"]
    assert pick(R.CLASS_TEACHER, no_vp) == Carer("p-1", R.CLASS_TEACHER, SCHOOL)


def test_missing_role_falls_back_up_the_org_tree():
    district = [staff("d-mh", R.MENTAL_HEALTH_TEACHER, at=DISTRICT), staff("city-p", R.PRINCIPAL, at=CITY)]
    assert pick(R.MENTAL_HEALTH_TEACHER, district) == Carer("d-mh", R.MENTAL_HEALTH_TEACHER, DISTRICT)
    assert pick(R.CLASS_TEACHER, district[1:]) == Carer("city-p", R.CLASS_TEACHER, CITY)
    assert pick(R.CLASS_TEACHER, []) is None


def test_another_class_teacher_of_the_school_is_not_a_stand_in():
    only_other = [staff("t-other", R.CLASS_TEACHER, head="c9")]
    assert pick(R.CLASS_TEACHER, only_other) is None


def test_choice_is_stable_and_carers_are_not_duplicated():
    two_vps = [staff("vp-b", R.VICE_PRINCIPAL), staff("vp-a", R.VICE_PRINCIPAL)]
    carers = domain.assign_carers(
        domain.Candidates([R.VICE_PRINCIPAL, R.VICE_PRINCIPAL], frozenset(), CLASS, domain.CandidatePool(two_vps)),
        RULES,
    )
    assert carers == [Carer("vp-a", R.VICE_PRINCIPAL, SCHOOL)]


def test_escalation_chain_school_district_city():
    assert domain.org_levels(CLASS) == [SCHOOL, DISTRICT, CITY]
    assert [domain.escalation_target(CLASS, lvl) for lvl in (0, 1, 2, 3)] == [SCHOOL, DISTRICT, CITY, CITY]
    assert domain.school_path(CLASS) == SCHOOL
    assert domain.class_of(CLASS) == "c2"
    assert domain.class_of(SCHOOL) is None


@pytest.mark.parametrize(
    ("category", "departments"),
    [
        (C.FAMILY_HARDSHIP, [D.CIVIL_AFFAIRS]),
        (C.ORPHANED_OR_UNACCOMPANIED, [D.CIVIL_AFFAIRS]),
        (C.GUARDIANSHIP_GAP, [D.CIVIL_AFFAIRS]),
        (C.DISABILITY, [D.DISABLED_PERSONS_FEDERATION]),
        (C.FAMILY_CONFLICT, [D.WOMENS_FEDERATION]),
        (C.HEALTH_NEED, [D.HEALTH]),
        (C.SAFETY_RISK, [D.PUBLIC_SECURITY, D.CIVIL_AFFAIRS]),
        (C.LEFT_BEHIND, []),
        (C.MENTAL_HEALTH, []),
    ],
)
def test_referral_mapping(category, departments):
    assert domain.referral_departments(RULES, category, S.HIGH) == departments


def test_referral_threshold_is_configurable():
    assert domain.referral_departments(Rules(referral_min_severity=S.HIGH), C.DISABILITY, S.MEDIUM) == []


def test_closure_needs_a_second_person_with_a_closing_role():
    refusal = domain.closure_decision_refusal
    assert refusal(RULES, {Role.SCHOOL_ADMIN}, "sa-2", "sa-1") is None
    assert refusal(RULES, {Role.DISTRICT_ADMIN}, "da-1", "t-1") is None
    assert "proposed" in (refusal(RULES, {Role.SCHOOL_ADMIN}, "sa-1", "sa-1") or "")
    # the same staff member under another token subject is still the same person
    assert refusal(RULES, {Role.SCHOOL_ADMIN}, "sa-x", "sa-1", "T1", "T1") is not None
    assert refusal(RULES, {Role.MENTAL_HEALTH_TEACHER}, "mh-2", "mh-1") is not None
    assert refusal(RULES, {Role.TEACHER, Role.AUDITOR, Role.DEPARTMENT_PARTNER}, "x", "y") is not None
    assert domain.closing_role(RULES, {Role.TEACHER, Role.DISTRICT_ADMIN}) == "district_admin"


def test_closure_is_proposed_once_and_only_for_open_cases():
    S = domain.CaseState
    for state in (S.OPEN, S.ASSIGNED, S.IN_PROGRESS, S.MONITORING):
        assert domain.closure_proposal_refusal(state, pending=False) is None
        assert domain.closure_proposal_refusal(state, pending=True) is not None
    assert domain.closure_proposal_refusal(S.CLOSED, pending=False) is not None


def test_referral_transitions():
    rt = domain.REFERRAL_TRANSITIONS
    assert rt[domain.ReferralState.REQUESTED] == {domain.ReferralState.ACKNOWLEDGED}
    assert rt[domain.ReferralState.ACKNOWLEDGED] == {domain.ReferralState.ACCEPTED, domain.ReferralState.DECLINED}
    assert rt[domain.ReferralState.ACCEPTED] == {domain.ReferralState.RESOLVED}
    assert domain.referral_refusal(domain.ReferralState.REQUESTED, domain.ReferralState.ACKNOWLEDGED) is None
    assert domain.referral_refusal(domain.ReferralState.REQUESTED, domain.ReferralState.RESOLVED) == (
        "a referral cannot go from requested to resolved"
    )


def test_rules_load_from_yaml_with_defaults_for_the_rest(tmp_path):
    f = tmp_path / "rules.yaml"
    f.write_text(
        "first_contact_hours: {urgent: 12, high: 48, medium: 100, low: 500}\n"
        "referral_departments: {learning_difficulty: [health]}\n"
        "risk_raise_category_count: 4\n"
    )
    s = OutreachSettings(rules_file=str(f))
    assert s.rules.first_contact_hours[S.URGENT] == 12
    assert s.rules.referral_departments == {C.LEARNING_DIFFICULTY: [D.HEALTH]}
    assert s.rules.risk_raise_category_count == 4
    assert s.rules.open_case_min_severity == S.HIGH


def test_a_proposer_acts_in_their_highest_role():
    assert domain.acting_role({Role.TEACHER, Role.SCHOOL_ADMIN}) == "school_admin"
    assert domain.acting_role({Role.MENTAL_HEALTH_TEACHER}) == "mental_health_teacher"
    assert domain.acting_role({Role.AUDITOR}) == "unknown"


def test_a_configured_category_without_a_register_group_enters_none():
    rules = Rules(special_group_categories=[C.LEFT_BEHIND, C.SAFETY_RISK])
    assert domain.special_group(rules, C.SAFETY_RISK) is None
    assert domain.referred_groups(RULES, ["disability", "safety_risk", "left_behind"]) == {"disability", "left_behind"}


def test_a_contact_is_not_in_the_future_and_its_review_comes_after_it():
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    future, review = ("/contacted_at", "a contact cannot be in the future"), "/next_review_at"
    assert domain.contact_fault(now - timedelta(days=3), None, now) is None
    assert domain.contact_fault(now + timedelta(minutes=5), None, now) is None  # a device clock a little ahead
    assert domain.contact_fault(now + timedelta(minutes=5, seconds=1), None, now) == future
    assert domain.contact_fault(now + timedelta(days=1), now + timedelta(days=9), now) == future
    assert domain.contact_fault(now, now + timedelta(seconds=1), now) is None
    assert domain.contact_fault(now, now, now)[0] == review  # type: ignore[index]
    assert domain.contact_fault(now, now - timedelta(days=1), now)[0] == review  # type: ignore[index]
