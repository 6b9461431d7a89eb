"""The Ten Requirements as rules (pure, no I/O): the requirements a record proves by itself are derived from it,
every requirement's answer is a stored fact, and a visit breaking a mandatory one is flagged with the reason.

Derived: `record_within_48h` from when the visit took place (`visited_at`, or the end of `visited_on` in the
bureau's local time) and when it was recorded; `visited_in_pairs` from the participants of an in-home visit (the
visiting teacher and at least one colleague). Other items keep the teacher's answer. Mandatory items are
configured (config/checklists.yaml `requirements.mandatory`): a derived or declared "no" on one flags the visit.
Reasons are built from the rule only (hours, counts), never from the teacher's notes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import NamedTuple

from services.visits.domain.checklist import ChecklistItem, RequirementRules
from shared.contracts.visits import ChecklistAnswer

RECORD_WITHIN = "record_within_48h"
IN_PAIRS = "visited_in_pairs"
DERIVED = frozenset({RECORD_WITHIN, IN_PAIRS})


# Tuples, not dataclasses: every visit recorded makes one VisitFacts and about ten Requirements (a frozen
# dataclass's __init__ costs several times a tuple's).
class VisitFacts(NamedTuple):
    """What the derived requirements are worked out from."""

    teacher_id: str
    visited_on: date
    visited_at: datetime | None
    recorded_at: datetime
    mode: str
    colleague_ids: tuple[str, ...]  # participants.teacher_ids
    declared: Mapping[str, ChecklistAnswer]  # the teacher's answers by item id


class Requirement(NamedTuple):
    """One requirement's answer for a visit, and whether it was derived from the record."""

    item_id: str
    answer: ChecklistAnswer
    derived: bool


class Flag(NamedTuple):
    """A mandatory requirement the visit breaks, and why."""

    item_id: str
    reason: str


class Assessment(NamedTuple):
    requirements: tuple[Requirement, ...]
    flags: tuple[Flag, ...]


def visit_moment(visited_on: date, visited_at: datetime | None, rules: RequirementRules) -> datetime:
    """When the visit took place: `visited_at` when given, else the end of its day in the bureau's local time (the
    benefit of the doubt goes to the teacher)."""
    if visited_at is not None:
        return visited_at
    return datetime.combine(visited_on + timedelta(days=1), time(), tzinfo=_zone(rules.utc_offset_hours))


@functools.cache
def _zone(utc_offset_hours: float) -> timezone:
    return timezone(timedelta(hours=utc_offset_hours))


def recording_delay(v: VisitFacts, rules: RequirementRules) -> timedelta:
    """How long after the visit it was recorded (never negative)."""
    return max(v.recorded_at - visit_moment(v.visited_on, v.visited_at, rules), timedelta())


def _derived(v: VisitFacts, rules: RequirementRules) -> dict[str, tuple[ChecklistAnswer, str]]:
    """The derived answers, each "no" with the reason it is flagged for (a "yes" has none)."""
    hours = recording_delay(v, rules).total_seconds() / 3600
    if hours <= rules.record_within_hours:
        out = {RECORD_WITHIN: (ChecklistAnswer.YES, "")}
    else:
        late = f"recorded {hours:.0f} h after the visit (allowed: {rules.record_within_hours:g} h)"
        out = {RECORD_WITHIN: (ChecklistAnswer.NO, late)}
    if v.mode not in rules.pairs_modes:
        out[IN_PAIRS] = (ChecklistAnswer.NOT_APPLICABLE, "")
    elif any(t != v.teacher_id for t in v.colleague_ids):
        out[IN_PAIRS] = (ChecklistAnswer.YES, "")
    else:
        alone = f"an {v.mode.replace('_', '-')} visit made alone (no colleague among the participants)"
        out[IN_PAIRS] = (ChecklistAnswer.NO, alone)
    return out


def assess(v: VisitFacts, items: Iterable[ChecklistItem], rules: RequirementRules) -> Assessment:
    """Every requirement of the visit's checklist version as a fact (derived ones from the record, the others as
    declared), and a flag for each mandatory one answered "no"."""
    derived = _derived(v, rules)
    requirements: list[Requirement] = []
    flags: list[Flag] = []
    for item in items:
        if item.id in derived:
            answer, reason = derived[item.id]
            if v.declared.get(item.id) == ChecklistAnswer.YES and answer == ChecklistAnswer.NO:
                reason += " although declared yes"
            requirements.append(Requirement(item.id, answer, True))
        elif item.id in v.declared:
            answer, reason = v.declared[item.id], "answered no"
            requirements.append(Requirement(item.id, answer, False))
        else:
            continue
        if answer == ChecklistAnswer.NO and item.id in rules.mandatory:
            flags.append(Flag(item.id, reason))
    return Assessment(tuple(requirements), tuple(flags))
