"""Follow-ups nobody forgets: next review dates by risk level, missed reviews escalated, accepted referrals chased,
a leaver's roles on a case handed to whoever the assignment rules choose."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.outreach import domain
from services.outreach.settings import Rules
from shared.contracts.common import Severity as S
from shared.contracts.common import StaffRole as R

RULES = Rules()
NOW = datetime(2026, 9, 10, 8, 0, tzinfo=UTC)
CLASS = "/620400/620402/s001/g3/c2"
SCHOOL, DISTRICT = "/620400/620402/s001", "/620400/620402"


def test_the_next_review_is_the_risk_levels_interval_after_the_contact_unless_the_carer_picks_sooner():
    assert domain.review_due(RULES, S.URGENT, NOW) == NOW + timedelta(days=7)
    assert domain.review_due(RULES, S.HIGH, NOW) == NOW + timedelta(days=14)
    assert domain.review_due(RULES, S.MEDIUM, NOW) == NOW + timedelta(days=30)
    assert domain.review_due(RULES, S.LOW, NOW) == NOW + timedelta(days=60)
    sooner = NOW + timedelta(days=3)
    assert domain.review_due(RULES, S.HIGH, NOW, sooner) == sooner
    # A carer cannot push the review past what the risk level allows.
    assert domain.review_due(RULES, S.URGENT, NOW, NOW + timedelta(days=40)) == NOW + timedelta(days=7)
    custom = Rules(review_days={S.URGENT: 1, S.HIGH: 2, S.MEDIUM: 3, S.LOW: 4})
    assert domain.review_due(custom, S.LOW, NOW) == NOW + timedelta(days=4)


def test_a_missed_review_escalates_like_a_missed_first_contact_with_its_own_reason():
    step = domain.escalate(RULES, CLASS, 0, S.HIGH, NOW, contacted=True)
    assert step == domain.Escalation(1, DISTRICT, NOW + timedelta(hours=72), domain.REVIEW_OVERDUE_REASON)
    assert domain.escalate(RULES, CLASS, 0, S.HIGH, NOW).reason == domain.OVERDUE_REASON


def test_an_accepted_referral_must_be_resolved_in_the_configured_time_or_is_chased_up_the_tree():
    assert domain.resolve_by(RULES, NOW) == NOW + timedelta(days=30)
    assert domain.resolve_by(Rules(referral_resolve_days=10), NOW) == NOW + timedelta(days=10)
    first = domain.chase_referral(RULES, CLASS, 0, NOW)
    assert first == domain.Escalation(1, DISTRICT, NOW + timedelta(days=30), "unresolved")
    top = domain.chase_referral(RULES, CLASS, 1, NOW)
    assert (top.level, top.escalated_to) == (2, "/620400")
    assert domain.chase_referral(RULES, CLASS, 2, NOW).level == 2  # the city stays the top


def test_a_leavers_roles_go_to_whoever_the_assignment_rules_choose_and_kept_roles_stay():
    pool = domain.CandidatePool(
        [
            domain.StaffMember("t-new", frozenset({R.CLASS_TEACHER}), SCHOOL, "c2"),
            domain.StaffMember("vp-1", frozenset({R.VICE_PRINCIPAL}), SCHOOL),
            domain.StaffMember("mh-1", frozenset({R.MENTAL_HEALTH_TEACHER}), SCHOOL),
        ]
    )
    kept = [domain.Carer("mh-1", R.MENTAL_HEALTH_TEACHER, SCHOOL)]
    new = domain.replacement_carers(RULES, [R.CLASS_TEACHER], kept, CLASS, pool)
    assert new == [domain.Carer("t-new", R.CLASS_TEACHER, SCHOOL)]
    # Nobody heads the class any more: the school's stand-in (vice principal) takes the role.
    no_head = domain.CandidatePool([domain.StaffMember("vp-1", frozenset({R.VICE_PRINCIPAL}), SCHOOL)])
    assert domain.replacement_carers(RULES, [R.CLASS_TEACHER], [], CLASS, no_head) == [
        domain.Carer("vp-1", R.CLASS_TEACHER, SCHOOL)
    ]
    # A role the remaining carers already hold is not filled twice.
    assert domain.replacement_carers(RULES, [R.MENTAL_HEALTH_TEACHER], kept, CLASS, pool) == []
