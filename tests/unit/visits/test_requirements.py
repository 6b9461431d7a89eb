"""The Ten Requirements as rules: derived from the record (48 h, pairs), stored as facts, mandatory ones flagged."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from services.visits.domain import checklist, requirements
from services.visits.domain.requirements import IN_PAIRS, RECORD_WITHIN, Flag, Requirement, VisitFacts
from shared.contracts.visits import ChecklistAnswer as A

CONFIG = checklist.load()
ITEMS = CONFIG.items(CONFIG.current)
RULES = CONFIG.requirements
DAY = date(2026, 9, 10)
END_OF_DAY = datetime(2026, 9, 10, 16, 0, tzinfo=UTC)  # midnight in the bureau's time (UTC+8)


def facts(recorded_at: datetime, *, visited_at: datetime | None = None, mode: str = "in_home", colleagues=("t-2",),
          declared: dict[str, A] | None = None) -> VisitFacts:  # fmt: skip
    return VisitFacts("t-1", DAY, visited_at, recorded_at, mode, tuple(colleagues), declared or {})


def answers(a: requirements.Assessment) -> dict[str, tuple[A, bool]]:
    return {r.item_id: (r.answer, r.derived) for r in a.requirements}


def test_the_configured_rules():
    assert RULES.mandatory == {RECORD_WITHIN, IN_PAIRS, "no_gifts_or_meals"}
    assert (RULES.record_within_hours, RULES.pairs_modes, RULES.utc_offset_hours) == (48, {"in_home"}, 8)


def test_a_visit_known_by_its_date_counts_from_the_end_of_that_local_day():
    assert requirements.visit_moment(DAY, None, RULES) == END_OF_DAY
    at = datetime(2026, 9, 10, 2, 30, tzinfo=UTC)
    assert requirements.visit_moment(DAY, at, RULES) == at


def test_recorded_within_48_hours_is_derived_from_when_the_visit_took_place_and_when_it_was_recorded():
    on_time = requirements.assess(facts(END_OF_DAY + timedelta(hours=48)), ITEMS, RULES)
    assert answers(on_time)[RECORD_WITHIN] == (A.YES, True) and on_time.flags == ()
    late = requirements.assess(facts(END_OF_DAY + timedelta(hours=49)), ITEMS, RULES)
    assert answers(late)[RECORD_WITHIN] == (A.NO, True)
    assert late.flags == (Flag(RECORD_WITHIN, "recorded 49 h after the visit (allowed: 48 h)"),)
    # A known time of visit is used as it is: 50 h before the record.
    at = datetime(2026, 9, 10, 1, 0, tzinfo=UTC)
    exact = requirements.assess(facts(at + timedelta(hours=50), visited_at=at), ITEMS, RULES)
    assert answers(exact)[RECORD_WITHIN] == (A.NO, True)
    # Recorded before the visit's day ended (or with a clock ahead): no delay, not late.
    assert answers(requirements.assess(facts(END_OF_DAY - timedelta(hours=3)), ITEMS, RULES))[RECORD_WITHIN][0] == A.YES


def test_pairs_are_derived_from_the_participants_of_an_in_home_visit():
    recorded = END_OF_DAY
    paired = requirements.assess(facts(recorded, colleagues=("t-2",)), ITEMS, RULES)
    assert answers(paired)[IN_PAIRS] == (A.YES, True)
    alone = requirements.assess(facts(recorded, colleagues=("t-1",)), ITEMS, RULES)  # naming oneself is not a pair
    assert answers(alone)[IN_PAIRS] == (A.NO, True)
    assert alone.flags == (Flag(IN_PAIRS, "an in-home visit made alone (no colleague among the participants)"),)
    phone = requirements.assess(facts(recorded, mode="phone", colleagues=()), ITEMS, RULES)
    assert answers(phone)[IN_PAIRS] == (A.NOT_APPLICABLE, True) and phone.flags == ()


def test_a_derived_answer_overrides_the_declared_one_and_the_flag_says_so():
    late = requirements.assess(facts(END_OF_DAY + timedelta(days=5), declared={RECORD_WITHIN: A.YES}), ITEMS, RULES)
    assert late.flags == (Flag(RECORD_WITHIN, "recorded 120 h after the visit (allowed: 48 h) although declared yes"),)


def test_declared_answers_are_kept_and_a_mandatory_no_is_flagged_an_optional_no_is_not():
    declared = {"no_gifts_or_meals": A.NO, "safety_education": A.NO, "appointment_made": A.YES}
    a = requirements.assess(facts(END_OF_DAY, declared=declared), ITEMS, RULES)
    assert answers(a)["no_gifts_or_meals"] == (A.NO, False)
    assert answers(a)["safety_education"] == (A.NO, False)
    assert answers(a)["appointment_made"] == (A.YES, False)
    assert a.flags == (Flag("no_gifts_or_meals", "answered no"),)
    assert [r.item_id for r in a.requirements] == [
        i.id for i in ITEMS if i.id in declared or i.id in requirements.DERIVED
    ]
    assert isinstance(a.requirements[0], Requirement)
