"""Outreach's three decisions, branch by branch: `decide` (open / join / reopen / ignore), `transition` (the case
state machine) and `assign_carers` (who cares for a case)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.outreach import domain
from services.outreach.domain import Action, Case, CaseState, Effect
from services.outreach.settings import Rules
from shared.contracts.common import Category as C
from shared.contracts.common import Severity as S
from shared.contracts.common import StaffRole as R
from shared.contracts.outreach import CarerAssignment
from shared.contracts.visits import FindingRecorded

RULES = Rules()
NOW = datetime(2026, 9, 10, 8, 0, tzinfo=UTC)
CLASS = "/620400/620402/s001/g3/c2"
SCHOOL, DISTRICT = "/620400/620402/s001", "/620400/620402"


def finding(category: C, severity: S, *, recorded_at: datetime = NOW, org_path: str = CLASS) -> FindingRecorded:
    return FindingRecorded(
        finding_id="f-1",
        student_id="stu-1",
        visit_id="v-1",
        campaign_id="cmp-1",
        teacher_id="t-1",
        category=category,
        severity=severity,
        org_path=org_path,
        visited_on=recorded_at.date(),
        recorded_at=recorded_at,
    )


def case(state: CaseState = CaseState.ASSIGNED, **kw: object) -> Case:
    fields: dict[str, object] = {
        "case_id": "case-1",
        "org_path": CLASS,
        "state": state,
        "max_severity": S.MEDIUM,
        "categories": (C.LEFT_BEHIND,),
        "contact_due": NOW + timedelta(days=3),
        "escalation_due": NOW + timedelta(days=3),
        "carers": (CarerAssignment(staff_id="t-head", role=R.CLASS_TEACHER, org_path=SCHOOL),),
    }
    fields.update(kw)
    return Case(**fields)  # type: ignore[arg-type]


# --- decide -----------------------------------------------------------------------------------------------------


def test_a_qualifying_finding_without_a_case_opens_one():
    d = domain.decide(None, finding(C.DISABILITY, S.MEDIUM), RULES, NOW)
    assert d.effect == Effect.OPENED
    assert d.case is not None
    assert d.case.case_id == ""  # the use case gives it an id
    assert d.case.state == CaseState.OPEN
    assert d.case.categories == (C.DISABILITY,)
    assert d.case.contact_due == d.case.escalation_due == d.first_contact_due == NOW + timedelta(days=7)
    assert d.case.carers == ()
    assert d.case.overdue is False


def test_a_minor_finding_without_an_open_case_is_ignored():
    d = domain.decide(None, finding(C.LEARNING_DIFFICULTY, S.LOW), RULES, NOW)
    assert d == domain.Decision(Effect.IGNORED, None)
    closed = case(CaseState.CLOSED, closed_at=NOW - timedelta(days=1))
    assert domain.decide(closed, finding(C.LEARNING_DIFFICULTY, S.LOW), RULES, NOW).effect == Effect.IGNORED


def test_a_qualifying_finding_joins_the_open_case_and_pulls_its_deadline_in():
    open_case = case(overdue=True)
    d = domain.decide(open_case, finding(C.SAFETY_RISK, S.URGENT), RULES, NOW)
    assert d.effect == Effect.JOINED
    assert d.case is not None
    assert d.case.case_id == "case-1"
    assert d.case.state == CaseState.ASSIGNED
    assert d.case.categories == (C.LEFT_BEHIND, C.SAFETY_RISK)
    assert d.case.max_severity == S.URGENT
    assert d.case.contact_due == d.case.escalation_due == d.first_contact_due == NOW + timedelta(hours=24)
    assert d.case.overdue is True  # joining changes nothing about an overdue first contact
    assert d.case.carers == open_case.carers


def test_a_later_deadline_does_not_push_the_open_case_out_and_a_known_category_is_kept_once():
    open_case = case(contact_due=NOW + timedelta(hours=1), escalation_due=NOW + timedelta(hours=1))
    d = domain.decide(open_case, finding(C.LEFT_BEHIND, S.LOW), RULES, NOW)
    assert d.effect == Effect.JOINED
    assert d.case is not None
    assert d.case.categories == (C.LEFT_BEHIND,)
    assert d.case.max_severity == S.MEDIUM
    assert d.case.contact_due == d.first_contact_due == NOW + timedelta(hours=1)


def test_a_minor_finding_joins_the_open_case_without_touching_its_deadlines():
    contacted = case(CaseState.IN_PROGRESS, contact_due=None, escalation_due=None)
    d = domain.decide(contacted, finding(C.LEARNING_DIFFICULTY, S.LOW), RULES, NOW)
    assert d.effect == Effect.JOINED
    assert d.case is not None
    assert d.case.contact_due is None and d.case.escalation_due is None
    assert d.case.categories == (C.LEFT_BEHIND, C.LEARNING_DIFFICULTY)
    # The event still announces a deadline: the finding's own (nothing to contact for otherwise).
    assert d.first_contact_due == NOW + timedelta(days=30)


def test_a_minor_finding_is_ignored_when_configured_not_to_join():
    rules = Rules(join_non_qualifying=False)
    open_case = case()
    assert domain.decide(open_case, finding(C.LEARNING_DIFFICULTY, S.LOW), rules, NOW) == domain.Decision(
        Effect.IGNORED, open_case
    )


def test_a_qualifying_finding_soon_after_closing_reopens_the_case_with_its_carers():
    closed = case(CaseState.CLOSED, closed_at=NOW - timedelta(days=30), overdue=False, org_path=SCHOOL + "/g1/c1")
    d = domain.decide(closed, finding(C.FAMILY_HARDSHIP, S.HIGH), RULES, NOW)
    assert d.effect == Effect.REOPENED
    assert d.case is not None
    assert d.case.case_id == "case-1"
    assert d.case.state == CaseState.OPEN
    assert d.case.org_path == CLASS  # the child's class now
    assert d.case.categories == (C.FAMILY_HARDSHIP,)
    assert d.case.carers == closed.carers
    assert d.case.closed_at is None
    assert d.first_contact_due == NOW + timedelta(hours=72)


def test_a_qualifying_finding_long_after_closing_opens_a_new_case():
    closed = case(CaseState.CLOSED, closed_at=NOW - timedelta(days=366))
    d = domain.decide(closed, finding(C.FAMILY_HARDSHIP, S.HIGH), RULES, NOW)
    assert d.effect == Effect.OPENED
    assert d.case is not None
    assert d.case.case_id == "" and d.case.carers == ()


def test_a_closed_case_without_a_closing_time_is_not_reopened():
    closed = case(CaseState.CLOSED, closed_at=None)
    assert domain.decide(closed, finding(C.DISABILITY, S.LOW), RULES, NOW).effect == Effect.OPENED


def test_the_reopen_window_is_configurable():
    closed = case(CaseState.CLOSED, closed_at=NOW - timedelta(days=10))
    assert domain.decide(closed, finding(C.DISABILITY, S.LOW), Rules(reopen_within_days=7), NOW).effect == (
        Effect.OPENED
    )


# --- transition -------------------------------------------------------------------------------------------------

ALLOWED: dict[tuple[CaseState | None, Action], CaseState] = {
    (None, Action.OPEN): CaseState.OPEN,
    (CaseState.CLOSED, Action.REOPEN): CaseState.OPEN,
    (CaseState.OPEN, Action.ASSIGN): CaseState.ASSIGNED,
    (CaseState.ASSIGNED, Action.ASSIGN): CaseState.ASSIGNED,
    (CaseState.IN_PROGRESS, Action.ASSIGN): CaseState.IN_PROGRESS,
    (CaseState.MONITORING, Action.ASSIGN): CaseState.MONITORING,
    (CaseState.OPEN, Action.CONTACT): CaseState.IN_PROGRESS,
    (CaseState.ASSIGNED, Action.CONTACT): CaseState.IN_PROGRESS,
    (CaseState.IN_PROGRESS, Action.CONTACT): CaseState.IN_PROGRESS,
    (CaseState.MONITORING, Action.CONTACT): CaseState.MONITORING,
    (CaseState.OPEN, Action.START): CaseState.IN_PROGRESS,
    (CaseState.ASSIGNED, Action.START): CaseState.IN_PROGRESS,
    (CaseState.MONITORING, Action.START): CaseState.IN_PROGRESS,
    (CaseState.IN_PROGRESS, Action.MONITOR): CaseState.MONITORING,
    (CaseState.OPEN, Action.CLOSE): CaseState.CLOSED,
    (CaseState.ASSIGNED, Action.CLOSE): CaseState.CLOSED,
    (CaseState.IN_PROGRESS, Action.CLOSE): CaseState.CLOSED,
    (CaseState.MONITORING, Action.CLOSE): CaseState.CLOSED,
    **{
        (s, Action.ESCALATE): s
        for s in (CaseState.OPEN, CaseState.ASSIGNED, CaseState.IN_PROGRESS, CaseState.MONITORING)
    },
}


@pytest.mark.parametrize("state", [None, *CaseState])
@pytest.mark.parametrize("action", list(Action))
def test_transition_table_is_exactly_the_allowed_moves(state, action):
    if (state, action) in ALLOWED:
        assert domain.transition(state, action) == ALLOWED[(state, action)]
    else:
        with pytest.raises(domain.TransitionRefused):
            domain.transition(state, action)


@pytest.mark.parametrize(
    ("state", "action", "reason"),
    [
        (CaseState.CLOSED, Action.CLOSE, "a closed case cannot be closed"),
        (CaseState.IN_PROGRESS, Action.START, "a case cannot go from in_progress to in_progress"),
        (CaseState.OPEN, Action.MONITOR, "a case cannot go from open to monitoring"),
        (CaseState.CLOSED, Action.CONTACT, "the case is closed"),
        (CaseState.OPEN, Action.REOPEN, "a case cannot reopen from open"),
        (CaseState.OPEN, Action.OPEN, "a case cannot open from open"),
        (None, Action.ASSIGN, "a case cannot assign from nothing"),
    ],
)
def test_refusals_say_why(state, action, reason):
    with pytest.raises(domain.TransitionRefused, match=reason):
        domain.transition(state, action)


def test_requested_states_are_the_hand_moves():
    assert domain.REQUESTED_STATES == {CaseState.IN_PROGRESS: Action.START, CaseState.MONITORING: Action.MONITOR}


def test_closure_can_be_proposed_exactly_where_a_case_can_close():
    for state in CaseState:
        closable = (state, Action.CLOSE) in ALLOWED
        assert (domain.closure_proposal_refusal(state, pending=False) is None) is closable


# --- assign_carers ----------------------------------------------------------------------------------------------


def member(sid: str, *roles: R, at: str = SCHOOL, head: str | None = None) -> domain.StaffMember:
    return domain.StaffMember(sid, frozenset(roles), at, head)


POOL = domain.CandidatePool(
    [
        member("t-head", R.CLASS_TEACHER, head="c2"),
        member("mh-2", R.MENTAL_HEALTH_TEACHER),
        member("mh-1", R.MENTAL_HEALTH_TEACHER),
        member("vp-1", R.VICE_PRINCIPAL),
        member("mh-d", R.MENTAL_HEALTH_TEACHER, at=DISTRICT),
    ]
)


def assign(roles: list[R], held: frozenset[R] = frozenset(), pool: domain.CandidatePool = POOL) -> list[domain.Carer]:
    return domain.assign_carers(domain.Candidates(roles, held, CLASS, pool), RULES)


def test_each_role_gets_one_carer_in_order_lowest_staff_id_first():
    assert assign([R.CLASS_TEACHER, R.MENTAL_HEALTH_TEACHER]) == [
        domain.Carer("t-head", R.CLASS_TEACHER, SCHOOL),
        domain.Carer("mh-1", R.MENTAL_HEALTH_TEACHER, SCHOOL),
    ]


def test_roles_the_case_already_has_are_not_filled_again():
    assert assign([R.CLASS_TEACHER, R.MENTAL_HEALTH_TEACHER], held=frozenset({R.CLASS_TEACHER})) == [
        domain.Carer("mh-1", R.MENTAL_HEALTH_TEACHER, SCHOOL)
    ]


def test_a_role_asked_twice_gives_one_carer():
    assert assign([R.VICE_PRINCIPAL, R.VICE_PRINCIPAL]) == [domain.Carer("vp-1", R.VICE_PRINCIPAL, SCHOOL)]


def test_a_role_nobody_can_fill_is_left_out():
    assert assign([R.MENTAL_HEALTH_TEACHER], pool=domain.CandidatePool([])) == []


def test_without_a_school_holder_the_district_holder_cares():
    district_only = domain.CandidatePool([member("mh-d", R.MENTAL_HEALTH_TEACHER, at=DISTRICT)])
    assert assign([R.MENTAL_HEALTH_TEACHER], pool=district_only) == [
        domain.Carer("mh-d", R.MENTAL_HEALTH_TEACHER, DISTRICT)
    ]


def test_a_case_at_a_school_path_has_no_class_teacher_only_stand_ins():
    carers = domain.assign_carers(domain.Candidates([R.CLASS_TEACHER], frozenset(), SCHOOL, POOL), RULES)
    assert carers == [domain.Carer("vp-1", R.CLASS_TEACHER, SCHOOL)]


def test_team_roles_stand_for_staff_roles_and_unknown_roles_are_dropped():
    m = domain.staff_member("s-1", ["mental_health_teacher", "vice_principal_in_charge", "no_such_role"], SCHOOL, None)
    assert m.roles == frozenset({R.MENTAL_HEALTH_TEACHER, R.VICE_PRINCIPAL})


def test_candidate_query_covers_every_configured_role_except_class_teachers():
    q = domain.candidate_query(RULES, [CLASS, CLASS, SCHOOL + "/g1/c7"])
    assert q.class_ids == ["c2", "c7"]
    assert q.levels == ["/620400", DISTRICT, SCHOOL]
    assert q.roles == sorted(str(r) for r in (R.MENTAL_HEALTH_TEACHER, R.PRINCIPAL, R.VICE_PRINCIPAL))
    assert q.team_roles == ["mental_health_teacher", "vice_principal_in_charge"]


def test_a_case_calls_for_the_roles_of_all_its_categories_once():
    roles = domain.case_carer_roles(RULES, [C.LEFT_BEHIND, C.MENTAL_HEALTH, C.SAFETY_RISK], S.URGENT)
    assert roles == [R.CLASS_TEACHER, R.MENTAL_HEALTH_TEACHER, R.VICE_PRINCIPAL]


# --- escalation -------------------------------------------------------------------------------------------------


def test_an_overdue_case_escalates_one_level_and_again_later_until_the_city():
    first = domain.escalate(RULES, CLASS, 0, S.URGENT, NOW)
    assert first == domain.Escalation(1, DISTRICT, NOW + timedelta(hours=24), domain.OVERDUE_REASON)
    top = domain.escalate(RULES, CLASS, 1, S.URGENT, NOW)
    assert top == domain.Escalation(2, "/620400", None, domain.OVERDUE_REASON)


def test_an_unacknowledged_referral_escalates_with_a_fresh_deadline():
    step = domain.escalate_referral(RULES, CLASS, 0, NOW)
    assert (step.level, step.escalated_to, step.next_due) == (1, DISTRICT, NOW + timedelta(days=3))


def test_staff_roles_count_as_themselves():
    assert domain.staff_member("s-2", ["principal"], SCHOOL, None).roles == frozenset({R.PRINCIPAL})


def test_a_case_risk_is_its_worst_severity_raised_for_many_categories():
    assert case(max_severity=S.MEDIUM, categories=(C.LEFT_BEHIND,)).risk(RULES) == S.MEDIUM
    many = (C.LEFT_BEHIND, C.MENTAL_HEALTH, C.HEALTH_NEED)
    assert case(max_severity=S.MEDIUM, categories=many).risk(RULES) == S.HIGH


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        (Action.ESCALATE, False, True),
        (Action.CONTACT, True, False),
        (Action.CLOSE, True, False),
        (Action.REOPEN, True, False),
        (Action.OPEN, False, False),
        (Action.ASSIGN, True, True),  # carers alone do not meet the deadline
        (Action.START, True, True),
        (Action.MONITOR, False, False),
    ],
)
def test_overdue_starts_with_escalation_and_ends_with_a_contact_closure_or_reopening(action, before, after):
    assert domain.overdue_after(action, before) is after


def test_a_reopened_case_is_no_longer_overdue():
    closed = case(CaseState.CLOSED, closed_at=NOW - timedelta(days=1), overdue=True)
    d = domain.decide(closed, finding(C.DISABILITY, S.LOW), RULES, NOW)
    assert d.effect == Effect.REOPENED
    assert d.case is not None and d.case.overdue is False
