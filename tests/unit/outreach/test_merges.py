"""A merge of duplicate children leaves one child with one open case."""

from __future__ import annotations

from services.outreach.domain.merges import OpenCase, merge_cases
from shared.contracts.common import Category, Severity

LEFT = OpenCase("c-keep", Severity.MEDIUM, (Category.LEFT_BEHIND,))
SAFETY = OpenCase("c-dup", Severity.URGENT, (Category.SAFETY_RISK, Category.LEFT_BEHIND))


def test_two_open_cases_fold_into_the_survivors_with_the_worse_risk_and_both_categories() -> None:
    m = merge_cases(LEFT, SAFETY)
    assert m.action == "fold" and m.risk_level == Severity.URGENT
    assert m.categories == (Category.LEFT_BEHIND, Category.SAFETY_RISK)


def test_the_duplicates_only_open_case_moves_to_the_survivor() -> None:
    assert merge_cases(None, SAFETY).action == "move"


def test_without_an_open_case_on_the_duplicate_nothing_moves() -> None:
    assert merge_cases(LEFT, None).action == "none"
    assert merge_cases(None, None).action == "none"
