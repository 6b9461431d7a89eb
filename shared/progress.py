"""Progress against a campaign's plan (pure, no I/O; today is passed in): the one rule visits (progress, a
teacher's own work) and reporting (the teachers-behind table) both apply.

The plan is even progress over the campaign's days: by the end of day d of n, d/n of each unit's assigned visits
are expected done (rounded down, so nobody is behind for a fraction of a visit). A unit (a teacher, class, grade,
school or district) is behind schedule when fewer visits are done (completed) than expected by today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


def expected_done(assigned: int, starts_on: date, ends_on: date, today: date) -> int:
    """Visits expected done by the end of `today`: none before the campaign starts, all from its last day."""
    days = (ends_on - starts_on).days + 1
    elapsed = min(max((today - starts_on).days + 1, 0), days)
    return assigned * elapsed // days


@dataclass(frozen=True)
class Plan:
    """Where a unit stands against the plan today."""

    expected: int
    behind: bool
    behind_by: int


def against_plan(assigned: int, done: int, starts_on: date, ends_on: date, today: date) -> Plan:
    """A unit's expected visits by today and whether (and by how many) it is behind schedule."""
    expected = expected_done(assigned, starts_on, ends_on, today)
    return Plan(expected, done < expected, max(expected - done, 0))
