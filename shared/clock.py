"""One clock for every service: aware UTC datetimes from an injectable `Clock`.

How time is read (the one way):

* Use cases, handlers and schedulers take a `Clock` and call `clock.now()`; the service builds one clock in its
  `build_spec` (`ServiceSpec.clock`, the system clock unless a test passes a `ManualClock`) and hands that same
  object to its consumers and background tasks (`runtime.clock`).
* Routes get it as a FastAPI dependency: `clock: CurrentClock` (`shared.web`), the spec's clock.
* Pure domain functions never read the time: they take `now` as an argument.
* SQL `now()` / `clock_timestamp()` only where the database itself must decide (commit stamps, row versions,
  comparisons that must hold inside one statement); business times (deadlines, `occurred_at`) come from the clock.
* Tests move time with `ManualClock.advance` instead of sleeping.
* A calendar date ("today", the day something happened) is the bureau's local date, never the UTC one: the bureau
  works in `bureau_time_zone` (settings, default Asia/Shanghai), so between 00:00 and 08:00 there the UTC date is
  still yesterday. `local_date(instant, zone)` is the one conversion; routes take `today: Today` (shared.web).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

BUREAU_TIME_ZONE = "Asia/Shanghai"  # the bureau's calendar (the default of settings' `bureau_time_zone`)


class Clock(Protocol):
    """Something that tells the time, as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that stands still until a test moves it (starts at the real time unless told)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start) if start is not None else datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward and return the new now."""
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to a moment."""
        self._now = utc(when)


class ShiftedClock:
    """The real time moved by a fixed offset: it runs like the system clock, from another moment."""

    def __init__(self, shift: timedelta) -> None:
        self.shift = shift

    def now(self) -> datetime:
        return datetime.now(UTC) + self.shift


SYSTEM_CLOCK = SystemClock()


def utc(when: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is refused (its zone is unknown)."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("a naive datetime has no zone; pass an aware one")
    return when.astimezone(UTC)


def local_date(when: datetime, zone: str = BUREAU_TIME_ZONE) -> date:
    """The calendar date an instant falls on in `zone` (an IANA name such as the bureau's Asia/Shanghai)."""
    return utc(when).astimezone(ZoneInfo(zone)).date()


def midday_of(day: date, zone: str = BUREAU_TIME_ZONE) -> ShiftedClock:
    """A running clock that starts at noon of `day` in `zone`: its local date stays `day` for twelve hours.

    For tests that compute "today" once and run against a service: at the real time they would see the date
    change under them when a run crosses local midnight (16:00 UTC for the bureau).
    """
    noon = datetime.combine(day, time(12), tzinfo=ZoneInfo(zone))
    return ShiftedClock(noon - datetime.now(UTC))
