"""The events of a recorded visit are built as the contracts' JSON without a model (`events.Built`): each builder
is held here to its contract class, byte for byte, and the visit row stores the requirements the event carries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import orjson
import pytest

from services.visits.domain.checklist import load
from services.visits.domain.recording import AssignmentFacts
from services.visits.domain.requirements import IN_PAIRS, RECORD_WITHIN
from services.visits.schemas import VisitIn
from services.visits.usecases.recording import Item, Writes, _record_one
from shared.auth import Principal, Role
from shared.contracts import visits as ev
from shared.events import Built, check_built, envelope_json, registry

CONFIG = load()
ITEMS = CONFIG.items(CONFIG.current)
CHILDREN = {"st-1": "/620400/620402/s1/g1/c1", "st-2": "/620400/620402/s1/g3/c7"}
TEACHER = Principal("t-1", frozenset({Role.TEACHER}), "/620400/620402/s1", staff_id="t-1")


def facts() -> AssignmentFacts:
    return AssignmentFacts(
        "a-1", "c-1", "t-1", "f-1", "/620400/620402/s1/g1/c1", "assigned", "launched", date(2026, 9, 1),
        date(2026, 12, 31), CONFIG.current, frozenset({"in_home", "phone"}), CHILDREN,
    )  # fmt: skip


def record(raw: dict[str, object], now: datetime) -> Writes:
    writes = Writes()
    outcome = _record_one(Item(TEACHER, VisitIn.model_validate(raw), None, 0), {"a-1": facts()}, CONFIG, now, writes)
    assert not outcome.faults, outcome.faults
    return writes


COMPLETED = {
    "assignment_id": "a-1",
    "status": "completed",
    "visited_on": "2026-10-10",
    "mode": "in_home",
    "duration_minutes": 45,
    "checklist": [{"item_id": i.id, "answer": "yes"} for i in ITEMS if i.id != RECORD_WITHIN],
    "guidance_topics": ["reading_at_home", "screen_time"],
    "findings": [
        {"student_id": "st-2", "category": "left_behind", "severity": "high", "note": "观察"},
        {"student_id": "st-1", "category": "health_need", "severity": "low"},
    ],
}


@pytest.mark.parametrize(
    ("raw", "now"),
    [
        # visited alone, recorded late: flags with reasons; a visit time with an offset, microseconds on the clock
        (
            {**COMPLETED, "visited_at": "2026-10-10T09:30:00.25+08:00"},
            datetime(2026, 10, 14, 1, 2, 3, 456789, tzinfo=UTC),
        ),
        # on time, in pairs, no visit time; a clock in another zone and without microseconds
        (
            {**COMPLETED, "participants": {"teacher_ids": ["t-2"], "guardian_ids": ["g-1"]}},
            datetime(2026, 10, 11, 9, 0, tzinfo=timezone(timedelta(hours=8))),
        ),
        ({**COMPLETED, "mode": "phone", "findings": []}, datetime(2026, 10, 11, tzinfo=UTC)),
        (
            {"assignment_id": "a-1", "status": "missed", "visited_on": "2026-10-10", "miss_reason": "family_declined"},
            datetime(2026, 10, 10, 12, tzinfo=UTC),
        ),
    ],
)
def test_each_event_of_a_recorded_visit_is_its_contract_s_json_byte_for_byte(raw: dict[str, object], now: datetime):
    writes = record(raw, now)
    [(_, events)] = writes.events
    assert all(isinstance(e, Built) for e in events)
    for event in events:
        check_built(event)  # validates against the contract class and writes the model's own JSON
    envelopes = envelope_json(events, [f"id-{n}" for n in range(len(events))], correlation_id="c", causation_id=None)
    for event, text in zip(events, envelopes, strict=True):
        doc = orjson.loads(text)
        payload = event.model.model_validate(doc["data"])
        assert registry.spec_for(payload) is registry.spec_for(event)
        assert doc["subject"] == registry.spec_for(event).subject(payload)
    kinds = [e.model.__name__ for e in events]
    if raw["status"] == "missed":
        assert kinds == ["VisitMissed"]
    else:
        assert kinds == ["VisitCompleted"] + ["FindingRecorded"] * len(raw["findings"])  # type: ignore[arg-type]
        [row] = writes.visits
        completed = ev.VisitCompleted.model_validate(events[0].fields)
        assert [r.model_dump() for r in completed.requirements or []] == row["requirements"]
        assert [f.model_dump() for f in completed.flags or []] == row["flags"]


def test_the_first_case_is_flagged_for_both_derived_requirements_and_the_second_for_none():
    late_alone = record(
        {**COMPLETED, "visited_at": "2026-10-10T09:30:00+08:00"}, datetime(2026, 10, 14, 1, 2, 3, tzinfo=UTC)
    )
    assert [f["item_id"] for f in late_alone.visits[0]["flags"]] == [
        i.id for i in ITEMS if i.id in (RECORD_WITHIN, IN_PAIRS)
    ]
    paired = {**COMPLETED, "participants": {"teacher_ids": ["t-2"], "guardian_ids": []}}
    assert record(paired, datetime(2026, 10, 11, 9, 0, tzinfo=UTC)).visits[0]["flags"] == []


def test_check_built_refuses_a_payload_its_contract_would_write_differently():
    [(_, events)] = record(COMPLETED, datetime(2026, 10, 11, tzinfo=UTC)).events
    fields = dict(events[0].fields)
    with pytest.raises(ValueError, match="writes"):  # a field out of the class's order
        check_built(Built(ev.VisitCompleted, {"mode": fields.pop("mode"), **fields}))
    with pytest.raises(ValueError):  # a field the contract does not accept
        check_built(Built(ev.VisitCompleted, {**fields, "duration_minutes": "long"}))
