"""Assembly of the indicator document from metric rows."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.domain.figures import (
    HOUR_SLOT_DIGITS,
    figures,
    flatten,
    hour_percentiles,
    merge_scopes,
    percentile_cont,
    ratio,
    series,
)
from services.reporting.usecases.cache import AnswerCache


def test_ratio_rounds_and_never_divides_by_zero():
    assert ratio(2, 3) == 0.6667
    assert ratio(0, 0) is None
    assert ratio(5, 5) == 1.0


def test_campaign_figures_come_from_the_campaign_and_structure_from_all():
    campaign = {("assignments", ""): 3, ("org_units", "school"): 99}
    everything = {("assignments", ""): 10, ("org_units", "school"): 2, ("sessions_held", ""): 4}
    merged = merge_scopes(campaign, everything, "c1")
    assert merged == {("assignments", ""): 3, ("org_units", "school"): 2, ("sessions_held", ""): 4}
    assert merge_scopes(campaign, everything, "") == everything


def test_figures_document():
    m = {
        ("families_assigned", ""): 4,
        ("families_visited", ""): 3,
        ("findings", "safety_risk|urgent"): 2,
        ("findings", "left_behind|low"): 1,
        ("checklist_yes", "i1"): 3,
        ("checklist_answered", "i1"): 4,
        ("org_units", "class"): 4,
        ("units_with_committee", "class"): 1,
        ("session_enrolled", ""): 10,
        ("attendance_present", ""): 4,
        ("referrals", "health|requested"): 1,
        ("finding_to_case_hours", "median"): 1.23456,
    }
    doc = figures(m, ["i1", "i2"])
    assert doc["families"] == {"assigned": 4, "visited": 3, "coverage": 0.75}
    assert doc["findings"]["total"] == 3
    assert doc["findings"]["by_category"]["safety_risk"] == 2
    assert doc["findings"]["by_severity"] == {"low": 1, "medium": 0, "high": 0, "urgent": 2}
    assert doc["checklist"]["i1"] == {"yes": 3, "answered": 4, "compliance": 0.75}
    assert doc["checklist"]["i2"] == {"yes": 0, "answered": 0, "compliance": None}
    assert doc["structure"]["committee_share"]["class"] == 0.25
    assert doc["structure"]["committee_share"]["school"] is None
    assert doc["structure"]["attendance"]["rate"] == 0.4
    assert doc["cases"]["finding_to_case_hours"] == {"median": 1.23, "p90": None}
    assert doc["cases"]["case_to_first_contact_hours"] == {"median": None, "p90": None}
    assert doc["referrals"]["health"]["requested"] == 1
    assert doc["referrals"]["civil_affairs"]["requested"] == 0


def _percentile_of_sorted(values: list[float], q: float) -> float:
    """PostgreSQL's percentile_cont, written out over the sorted values."""
    values = sorted(values)
    rank = q * (len(values) - 1)
    low = int(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (rank - low) * (values[high] - values[low])


@given(
    st.lists(st.integers(min_value=-50, max_value=5000), min_size=1, max_size=60),
    st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),
)
def test_percentile_from_counts_is_percentile_cont_of_the_values(values, q):
    counts: dict[float, float] = {}
    for v in values:
        counts[v / 100] = counts.get(v / 100, 0) + 1
    assert percentile_cont(counts, q) == pytest.approx(_percentile_of_sorted([v / 100 for v in values], q))


def test_percentiles_of_nothing_are_none_and_empty_slots_do_not_count():
    assert percentile_cont({}, 0.5) is None
    assert percentile_cont({1.0: 0, 2.0: 0}, 0.5) is None
    assert percentile_cont({1.0: 1, 5.0: 0, 3.0: 1}, 0.5) == 2.0


def _slot(hours: float) -> float:
    """The slot a measure is counted in (store/refresh.py SLOT, PostgreSQL's rounding written out)."""
    if hours == 0:
        return 0.0
    digits = min(2, HOUR_SLOT_DIGITS - 1 - math.floor(math.log10(abs(hours))))
    return float(round(Decimal(repr(hours)), digits))


@given(st.lists(st.floats(min_value=0, max_value=2000 * 3600, allow_nan=False), min_size=1, max_size=40))
def test_hours_counted_per_slot_are_the_exact_percentiles_to_half_a_percent(seconds):
    """Against the exact percentiles of the same measures (PostgreSQL's percentile_cont over every case, as before):
    a slot is at most half its width from the hours in it (0.005 h below 10 h, 0.5 % above), interpolation keeps
    that bound, and the figure shows two decimals."""
    slots: dict[float, float] = {}
    for s in seconds:
        slots[_slot(s / 3600)] = slots.get(_slot(s / 3600), 0) + 1
    shown = hour_percentiles(slots)
    for name, q in (("median", 0.5), ("p90", 0.9)):
        exact = _percentile_of_sorted([s / 3600 for s in seconds], q)
        got = shown[name]
        assert got is not None and abs(round(got, 2) - exact) <= 0.01 + 0.005 * max(seconds) / 3600 + 1e-9


def test_slots_are_never_finer_than_a_hundredth():
    assert hour_percentiles({0.0: 4, 2.0: 1}) == {"median": 0.0, "p90": pytest.approx(1.2)}
    assert hour_percentiles({}) == {"median": None, "p90": None}
    assert [_slot(h) for h in (0.004, 0.006, 1.236, 9.996, 130.92, 1234.5)] == [0.0, 0.01, 1.24, 10.0, 131.0, 1230.0]


def test_series_per_day_in_order():
    m = {("visits_daily", "2026-10-11"): 2, ("visits_daily", "2026-10-10"): 1, ("cases_opened_daily", "2026-10-11"): 1}
    assert series(m) == [
        {"day": "2026-10-10", "visits": 1, "findings": 0, "cases_opened": 0, "cases_closed": 0},
        {"day": "2026-10-11", "visits": 2, "findings": 0, "cases_opened": 1, "cases_closed": 0},
    ]


def test_flatten_dotted_names():
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": 2}) == [("a.b", 1), ("a.c.d", None), ("e", 2)]


async def test_answer_cache_single_flight_and_expiry():
    calls = 0

    async def compute() -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return b"x"

    cache = AnswerCache(ttl=60)
    assert await asyncio.gather(*[cache.get("k", compute) for _ in range(10)]) == [b"x"] * 10
    assert calls == 1
    assert await cache.get("k", compute) == b"x" and calls == 1
    uncached = AnswerCache(ttl=0)
    await uncached.get("k", compute)
    await uncached.get("k", compute)
    assert calls == 3

    async def boom() -> bytes:
        raise RuntimeError("db down")

    with pytest.raises(RuntimeError):
        await cache.get("other", boom)
    assert await cache.get("other", compute) == b"x"

    # Expired: the stale answer comes back at once and one background task refreshes it.
    stale = AnswerCache(ttl=0.01)
    assert await stale.get("k", compute) == b"x" and calls == 5
    await asyncio.sleep(0.02)

    async def newer() -> bytes:
        return b"y"

    assert await stale.get("k", newer) == b"x"
    await asyncio.sleep(0.01)
    assert await stale.get("k", newer) == b"y"


def test_parent_school_attendance_online_vs_in_person():
    from services.reporting.domain.figures import parent_school_attendance

    m = {
        ("session_enrolled", ""): 10,
        ("attendance_present", ""): 6,
        ("attendance_by_channel", "online"): 3,
        ("attendance_by_channel", "in_person"): 1,
        ("attendance_by_channel", "unknown"): 2,
    }
    doc = parent_school_attendance(m)
    assert doc == {
        "enrolled": 10,
        "attended": 6,
        "rate": 0.6,
        "by_channel": {"online": 3, "in_person": 1, "unknown": 2},
        "online_share": 0.75,  # of those whose channel is known
    }
    assert parent_school_attendance({})["online_share"] is None


def test_lecturer_group_members_lectures_by_lecturer_and_reach():
    from services.reporting.domain import figures as f

    m = {
        ("lecturers", ""): 3,
        ("lectures", "other"): 4,
        ("lectures", "ministry_guidance"): 1,
        ("lecture_audience", "other"): 200,
        ("lecture_audience", "ministry_guidance"): 50,
        ("lectures_by_lecturer", "l-b"): 2,
        ("lectures_by_lecturer", "l-a"): 2,
        ("lectures_by_lecturer", "l-c"): 1,
        ("lectures_by_lecturer", ""): 0,  # lectures projected before the lecturer was known
        ("lecture_reach_units", ""): 7,
    }
    doc = f.lecturer_group(m)
    assert doc["members"] == 3 and doc["lecturers_lecturing"] == 3
    assert list(doc["top_lecturers"].items()) == [("l-a", 2), ("l-b", 2), ("l-c", 1)]
    assert doc["reach"] == {"lectures": 5, "audience": 250, "org_units": 7}
    many = {("lectures_by_lecturer", f"l{i:03}"): i for i in range(1, 40)}
    assert list(f.lecturer_group(many)["top_lecturers"].values()) == list(range(39, 19, -1))
