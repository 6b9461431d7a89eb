"""Progress against the campaign's plan: expected done by today, behind schedule."""

from __future__ import annotations

from datetime import date

from shared import progress

START, END = date(2026, 9, 1), date(2026, 9, 10)  # ten days


def test_expected_done_grows_evenly_over_the_campaign_days_rounded_down():
    assert progress.expected_done(10, START, END, date(2026, 8, 31)) == 0  # not started
    assert progress.expected_done(10, START, END, START) == 1  # end of day 1 of 10
    assert progress.expected_done(10, START, END, date(2026, 9, 5)) == 5
    assert progress.expected_done(7, START, END, date(2026, 9, 5)) == 3  # 3.5 → 3: never behind for half a visit
    assert progress.expected_done(10, START, END, END) == 10
    assert progress.expected_done(10, START, END, date(2026, 12, 1)) == 10  # after the end: everything
    assert progress.expected_done(0, START, END, END) == 0
    assert progress.expected_done(4, START, START, START) == 4  # a one-day campaign


def test_a_unit_is_behind_when_fewer_visits_are_done_than_expected_by_today():
    today = date(2026, 9, 5)  # 5 of 10 expected
    assert progress.against_plan(10, 4, START, END, today) == progress.Plan(5, True, 1)
    assert progress.against_plan(10, 5, START, END, today) == progress.Plan(5, False, 0)
    assert progress.against_plan(10, 9, START, END, today) == progress.Plan(5, False, 0)
    assert progress.against_plan(10, 0, START, END, date(2026, 8, 1)) == progress.Plan(0, False, 0)
