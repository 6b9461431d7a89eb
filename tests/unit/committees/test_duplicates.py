"""The duplicate-children rule: which pairs of student records are likely the same child, and how likely."""

from __future__ import annotations

from datetime import date

from services.committees.domain.duplicates import (
    THRESHOLD,
    Child,
    candidates,
    county_of,
    merge_refusal,
    name_similarity,
    score,
)

COUNTY = "/620400/620402"
BORN = date(2016, 3, 8)


def child(sid: str, name: str, born: date | None = BORN, county: str = COUNTY, phones: set[str] | None = None) -> Child:
    return Child(sid, name, born, county, frozenset(phones or ()))


def test_names_are_compared_by_characters_and_by_sound() -> None:
    assert name_similarity("王晓明", "王晓明") == 1.0
    assert name_similarity("王晓明", "王小明") == 1.0  # a homophone typed through pinyin
    assert name_similarity("王 晓明", "王晓明") == 1.0  # spaces are not part of a name
    assert name_similarity("王晓明", "李华") < 0.3
    assert name_similarity("王一", "王二") == 0.5
    assert name_similarity("", "王二") == 0.0


def test_the_same_name_birth_date_and_county_is_a_candidate() -> None:
    found = score(child("a", "王晓明"), child("b", "王晓明"))
    assert found is not None and found.student_id == "b"
    assert found.score == 0.8 and found.reasons == ("same_name", "same_birth_date", "same_county")


def test_a_homophone_typo_with_a_shared_guardian_phone_scores_highest() -> None:
    found = score(child("a", "王晓明", phones={"13800001111"}), child("b", "王小明", phones={"13800001111", "139"}))
    assert found is not None and found.score == 1.0
    assert found.reasons == ("same_name", "same_birth_date", "same_county", "shared_guardian_phone")


def test_a_child_who_moved_county_is_found_by_the_guardians_phone() -> None:
    moved = child("b", "王晓明", county="/620400/620403", phones={"13800001111"})
    found = score(child("a", "王晓明", phones={"13800001111"}), moved)
    assert found is not None and found.score == 1.0 and "same_county" not in found.reasons


def test_namesakes_born_on_other_days_are_not_candidates() -> None:
    """Common names repeat in a county: the same name alone (0.55) stays below the threshold."""
    assert score(child("a", "王晓明"), child("b", "王晓明", born=date(2016, 3, 9))) is None
    assert score(child("a", "王晓明", born=None), child("b", "王晓明")) is None


def test_twins_are_not_candidates_whatever_else_they_share() -> None:
    phones = {"13800001111"}
    assert score(child("a", "王一", phones=phones), child("b", "王二", phones=phones)) is None


def test_a_record_is_not_its_own_duplicate_and_candidates_come_best_first() -> None:
    me = child("a", "王晓明", phones={"1"})
    assert score(me, me) is None
    others = [
        me,
        child("c", "王晓明"),  # 0.80
        child("b", "王小明", phones={"1"}),  # 1.0
        child("d", "李华"),
        child("e", "王晓敏", born=date(2015, 1, 1)),
    ]
    found = candidates(me, others)
    assert [(c.student_id, c.score) for c in found] == [("b", 1.0), ("c", 0.8)]
    assert all(c.score >= THRESHOLD for c in found)


def test_a_merge_needs_two_current_records_that_are_not_the_same() -> None:
    keep = {"student_id": "a", "active": True, "merged_into": None}
    dup = {"student_id": "b", "active": True, "merged_into": None}
    assert merge_refusal(keep, dup) is None
    assert merge_refusal(None, dup) == ("/student_id", "no such student")
    assert merge_refusal(keep, None) == ("/duplicate_id", "no such student")
    assert merge_refusal(keep, keep)[0] == "/duplicate_id"  # type: ignore[index]
    assert merge_refusal(keep, {**dup, "merged_into": "c"}) == ("/duplicate_id", "already merged into c")
    assert merge_refusal({**keep, "active": False}, dup)[0] == "/student_id"  # type: ignore[index]


def test_the_county_is_the_second_level_of_the_org_path() -> None:
    assert county_of("/620400/620402/s1/g1/c1") == "/620400/620402"
