"""Event handlers: visits keeps the kit's directory copy (shared.directory) of committees' events, in which a
teacher's leaving hands their open assignments over (usecases/leavers.py) in the same transaction, and follows
the surviving record when committees merges a duplicate child."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.visits import store
from services.visits.usecases import leavers
from shared.clock import Clock
from shared.contracts.committees import StudentMerged
from shared.directory import STAFF, TOPICS, Changes, DirectoryCopy
from shared.events import Event, type_of
from shared.inbox import Batch, Subscription

GROUP = "visits.directory"
CONSUMED_TOPICS = TOPICS


class DirectoryChanges:
    """The directory copy's change hook: the open assignments of teachers who left go to colleagues."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def __call__(self, conn: asyncpg.Connection, changes: Changes) -> None:
        await leavers.hand_over(conn, [r["staff_id"] for r in changes.of(STAFF, active=False)], self.clock.now())


async def on_merges(conn: asyncpg.Connection, events: list[Event[Any]]) -> None:
    """A duplicate child merged into another: its findings and assignments name the survivor (the directory copy
    itself drops the duplicate like a leaver)."""
    for e in events:
        p: StudentMerged = e.payload
        await store.merges.update_student_id(conn, p.student_id, p.merged_into)


def consumers(clock: Clock) -> dict[str, Subscription]:
    """The consumer group: the directory copy (the leavers' hook locks the assignment rows it changes), which also
    follows merges, once each (nothing read across topics, so nothing locked)."""
    merges = Batch(frozenset({type_of(StudentMerged)}), on_merges)
    return {GROUP: DirectoryCopy(DirectoryChanges(clock), reads=[STAFF], then=merges).subscription()}
