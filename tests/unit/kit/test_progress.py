"""Progress against the campaign's plan: expected done by today, behind schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from shared import progress
from shared.clock import local_date
from shared.settings import ServiceSettings

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


def test_today_is_the_bureaus_date_around_its_midnight_not_utcs():
    """Midnight in Asia/Shanghai is 16:00 UTC: from then until UTC's midnight the bureau is a day ahead, and a
    teacher with 4 of 10 done on the fifth morning is behind (by UTC's date they would still be on day 4)."""
    settings = ServiceSettings()
    assert settings.bureau_time_zone == "Asia/Shanghai"  # the default
    before = datetime(2026, 9, 4, 15, 59, 59, tzinfo=UTC)  # 23:59:59 on the 4th in Shanghai
    after = datetime(2026, 9, 4, 16, 0, tzinfo=UTC)  # 00:00 on the 5th in Shanghai, still the 4th in UTC
    assert settings.today(before) == date(2026, 9, 4) == local_date(before)
    assert settings.today(after) == date(2026, 9, 5) == local_date(after) != after.date()
    assert progress.against_plan(10, 4, START, END, settings.today(before)) == progress.Plan(4, False, 0)
    assert progress.against_plan(10, 4, START, END, settings.today(after)) == progress.Plan(5, True, 1)
    # Another zone is honoured; an unknown one is refused when the settings load.
    assert ServiceSettings(bureau_time_zone="Europe/London").today(after) == date(2026, 9, 4)
    with pytest.raises(ValidationError, match="bureau_time_zone"):
        ServiceSettings(bureau_time_zone="Mars/Olympus")
