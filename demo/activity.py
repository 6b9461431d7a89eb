"""What the city's people do in the demo: cooperation structure, teachers' visit records, a department's answers."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from demo.citygen import City
from shared.contracts.common import Category, Severity

MODES = [("in_home", 0.62), ("online", 0.18), ("phone", 0.12), ("at_school", 0.08)]
GUIDANCE = ["study_habits", "screen_time", "reading_at_home", "emotional_support", "safety_at_home", "healthy_diet"]
# Findings per child visited, by category: special-group categories at rates like the bureau's registers.
FINDING_RATES: dict[Category, float] = {
    Category.LEFT_BEHIND: 0.05,
    Category.FAMILY_HARDSHIP: 0.03,
    Category.DISABILITY: 0.008,
    Category.ORPHANED_OR_UNACCOMPANIED: 0.004,
    Category.MENTAL_HEALTH: 0.02,
    Category.GUARDIANSHIP_GAP: 0.01,
    Category.FAMILY_CONFLICT: 0.01,
    Category.SAFETY_RISK: 0.004,
    Category.HEALTH_NEED: 0.015,
    Category.LEARNING_DIFFICULTY: 0.04,
    Category.FAMILY_EDUCATION_NEED: 0.05,
}
SEVERITIES = [(Severity.LOW, 0.45), (Severity.MEDIUM, 0.35), (Severity.HIGH, 0.15), (Severity.URGENT, 0.05)]


def pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    """One value of a weighted list."""
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights=weights)[0]


# The requirements visits derives from the record itself (recorded within 48 h, visited in pairs): the app leaves them
# out of the checklist and says when and with whom the visit took place instead.
DERIVED = {"record_within_48h", "visited_in_pairs"}


@dataclass(frozen=True)
class Habits:
    """How a teacher records: on the day (or days later, `late`), with a colleague for in-home visits (`paired`),
    and what share of their families they have visited so far (`done`: below the plan makes them behind)."""

    late: bool = False
    paired: float = 1.0
    done: float = 1.0


def teacher_habits(rng: random.Random) -> Habits:
    """Most teachers record the day of the visit, in pairs, and keep up; some record late, some visit alone, some
    fall behind the campaign's plan."""
    return Habits(
        late=rng.random() < 0.15,
        paired=1.0 if rng.random() < 0.7 else 0.5,
        done=1.0 if rng.random() < 0.9 else rng.uniform(0.0, 0.3),
    )


def visit_record(
    rng: random.Random,
    assignment: dict[str, Any],
    checklist_ids: list[str],
    starts_on: date,
    days: int,
    *,
    habits: Habits | None = None,
    colleague: str | None = None,
) -> dict[str, Any]:
    """A teacher's record of one visit: mostly completed with the checklist answered, some missed, some findings.
    With `habits` the visit took place today or yesterday (days earlier for a late recorder) and an in-home visit
    names `colleague` as the second teacher when the teacher visits in pairs."""
    visited_on = starts_on + timedelta(days=rng.randrange(days))
    if habits is not None:
        ago = rng.randint(3, min(20, days - 1)) if habits.late else rng.randint(0, 1)
        visited_on = starts_on + timedelta(days=days - ago)
    if rng.random() < 0.03:
        return {
            "assignment_id": assignment["assignment_id"],
            "status": "missed",
            "visited_on": visited_on.isoformat(),
            "miss_reason": pick(rng, [("family_unavailable", 0.7), ("family_declined", 0.2), ("other", 0.1)]),
        }
    checklist = []
    for item in (i for i in checklist_ids if habits is None or i not in DERIVED):
        answer = "yes" if rng.random() < 0.93 else ("not_applicable" if rng.random() < 0.5 else "no")
        checklist.append({"item_id": item, "answer": answer, "note": "to follow up" if answer == "no" else None})
    findings = []
    for student_id in assignment["student_ids"]:
        for category, rate in FINDING_RATES.items():
            if rng.random() < rate:
                findings.append(
                    {
                        "student_id": student_id,
                        "category": category.value,
                        "severity": pick(rng, SEVERITIES).value,
                        "note": "observed during the visit",
                    }
                )
    mode = pick(rng, MODES)
    paired = habits is not None and colleague is not None and mode == "in_home" and rng.random() < habits.paired
    return {
        "assignment_id": assignment["assignment_id"],
        "status": "completed",
        "visited_on": visited_on.isoformat(),
        "participants": {"teacher_ids": [colleague] if paired else [], "guardian_ids": []},
        "mode": mode,
        "duration_minutes": rng.randint(25, 90),
        "checklist": checklist,
        "guidance_topics": rng.sample(GUIDANCE, 2),
        "findings": findings,
    }


def schools(city: City) -> list[Any]:
    """The city's school org units."""
    return [u for u in city.org_units if u.level == "school"]


def districts(city: City) -> list[Any]:
    """The city's districts and counties."""
    return [u for u in city.org_units if u.level == "district"]
