"""What the city's people do in the demo: cooperation structure, teachers' visit records, a department's answers."""

from __future__ import annotations

import random
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


def visit_record(
    rng: random.Random, assignment: dict[str, Any], checklist_ids: list[str], starts_on: date, days: int
) -> dict[str, Any]:
    """A teacher's record of one visit: mostly completed with the checklist answered, some missed, some findings."""
    visited_on = starts_on + timedelta(days=rng.randrange(days))
    if rng.random() < 0.03:
        return {
            "assignment_id": assignment["assignment_id"],
            "status": "missed",
            "visited_on": visited_on.isoformat(),
            "miss_reason": pick(rng, [("family_unavailable", 0.7), ("family_declined", 0.2), ("other", 0.1)]),
        }
    checklist = []
    for item in checklist_ids:
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
    return {
        "assignment_id": assignment["assignment_id"],
        "status": "completed",
        "visited_on": visited_on.isoformat(),
        "mode": pick(rng, MODES),
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
