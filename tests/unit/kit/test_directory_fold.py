"""The directory copy's fold: a batch written as (newest facts, then newest leaving) per entity leaves the same rows
as applying its events one by one, for any split of the stream into batches."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.contracts import committees as c
from shared.directory import STAFF, STUDENTS, TABLES, Changes, DirectoryCopy, fold
from shared.events import Fact, type_of

T0 = datetime(2026, 9, 1, tzinfo=UTC)
Row = dict[str, Any]


def one_by_one(state: dict[str, Row], events: list[Any]) -> None:
    """The reference: each event guarded by the stored version, as a per-event handler would write it."""
    for p in events:
        row = state.get(p.student_id)
        if row is not None and row["occurred_at"] > p.occurred_at:
            continue
        if isinstance(p, c.StudentLeft):
            kept = row or {"class_id": "", "org_path": p.org_path}
            state[p.student_id] = {**kept, "active": False, "occurred_at": p.occurred_at}
        else:
            state[p.student_id] = {"class_id": p.class_id, "org_path": p.org_path, "active": True,
                                   "occurred_at": p.occurred_at}  # fmt: skip


def batched(state: dict[str, Row], events: list[Any]) -> None:
    """What `DirectoryCopy.apply` makes the database do with a batch: facts upserts, then tombstone upserts."""
    facts, gone = fold([Fact(type_of(type(p)), dict(p)) for p in events]).get(STUDENTS, ([], []))
    for f in facts:
        at = f["occurred_at"]
        row = state.get(f["student_id"])
        if row is None or row["occurred_at"] <= at:
            state[f["student_id"]] = {"class_id": f["class_id"], "org_path": f["org_path"], "active": True,
                                      "occurred_at": at}  # fmt: skip
    for g in gone:
        at = g["occurred_at"]
        row = state.get(g["student_id"])
        if row is None:
            state[g["student_id"]] = {"class_id": "", "org_path": g["org_path"], "active": False, "occurred_at": at}
        elif row["occurred_at"] <= at:
            state[g["student_id"]] = {**row, "active": False, "occurred_at": at}


def stream(rng: random.Random, n: int) -> list[Any]:
    events: list[Any] = []
    for _ in range(n):
        sid, when = f"s{rng.randrange(3)}", T0 + timedelta(minutes=rng.randrange(8))
        if rng.random() < 0.3:
            events.append(c.StudentLeft(student_id=sid, org_path="/x", occurred_at=when))
        else:
            cls = f"c{rng.randrange(4)}"
            events.append(c.StudentChanged(student_id=sid, class_id=cls, org_path=f"/x/{cls}", family_id="f",
                                           occurred_at=when))  # fmt: skip
    return events


def test_any_split_into_batches_leaves_the_rows_applying_one_by_one_leaves() -> None:
    rng = random.Random(16)
    for _ in range(2000):
        events = stream(rng, rng.randrange(1, 12))
        expected: dict[str, Row] = {}
        one_by_one(expected, events)
        got: dict[str, Row] = {}
        cuts = sorted(rng.sample(range(1, len(events) + 1), rng.randrange(1, len(events) + 1)))
        start = 0
        for cut in cuts:
            batched(got, events[start:cut])
            start = cut
        batched(got, events[start:])
        assert got == expected, events


def test_a_copy_returns_only_the_changes_its_hook_reads() -> None:
    """Tables the change hook does not read are written without RETURNING; asking for their changes is an error, not
    an empty list that would hide a hook reading a table it did not declare."""

    async def hook(conn: Any, changes: Changes) -> None: ...

    copy = DirectoryCopy(hook, reads=[STAFF])
    assert copy.reads == {"staff"}
    assert DirectoryCopy().reads == frozenset()
    assert DirectoryCopy(hook).reads == {t.name for t in TABLES}
    assert "RETURNING" in STAFF.upsert_facts(True) and "RETURNING" in STAFF.upsert_gone(True)
    assert "RETURNING" not in STUDENTS.upsert_facts(False) and "RETURNING" not in STUDENTS.upsert_gone(False)
    changes = Changes(reads=copy.reads)
    assert changes.of(STAFF) == []
    with pytest.raises(ValueError, match="students"):
        changes.of(STUDENTS)
