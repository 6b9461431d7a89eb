"""The kit's clock: aware UTC always, and a manual clock that moves only when told."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.clock import SYSTEM_CLOCK, ManualClock, ShiftedClock, local_date, midday_of, utc


def test_system_clock_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_manual_clock_stands_still_until_moved() -> None:
    start = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == clock.now() == start
    assert clock.advance(timedelta(hours=25)) == start + timedelta(hours=25)
    assert clock.now() == start + timedelta(hours=25)
    clock.set(start)
    assert clock.now() == start


def test_manual_clock_converts_other_zones_to_utc() -> None:
    beijing = timezone(timedelta(hours=8))
    clock = ManualClock(datetime(2026, 9, 1, 16, 0, tzinfo=beijing))
    assert clock.now().tzinfo is UTC
    assert clock.now().hour == 8


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2026, 9, 1, 8, 0))
    with pytest.raises(ValueError, match="naive"):
        ManualClock(datetime(2026, 9, 1, 8, 0))


def test_a_midday_clock_runs_and_keeps_its_bureau_date_for_twelve_hours() -> None:
    day = date(2026, 9, 1)
    clock = midday_of(day)
    first = clock.now()
    assert first.tzinfo is UTC
    assert local_date(first) == day
    assert abs(first - datetime(2026, 9, 1, 4, 0, tzinfo=UTC)) < timedelta(seconds=5)  # noon in Shanghai
    assert clock.now() >= first  # it runs
    late = ShiftedClock(clock.shift + timedelta(hours=11, minutes=59))
    assert local_date(late.now()) == day
    assert local_date(ShiftedClock(clock.shift + timedelta(hours=12, seconds=5)).now()) == day + timedelta(days=1)
