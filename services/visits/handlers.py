"""Event handlers: visits keeps the kit's directory copy (shared.directory) of committees' events, and follows the
surviving record when committees merges a duplicate child."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.visits import store
from shared.contracts.committees import StudentMerged
from shared.directory import TOPICS, DirectoryCopy
from shared.events import Event, type_of
from shared.inbox import Batch

GROUP = "visits.directory"
MERGES_GROUP = "visits.merges"
CONSUMED_TOPICS = TOPICS


async def on_merges(conn: asyncpg.Connection, events: list[Event[Any]]) -> None:
    """A duplicate child merged into another: its findings and assignments name the survivor (the directory copy
    itself drops the duplicate like a leaver)."""
    for e in events:
        p: StudentMerged = e.payload
        await store.merges.update_student_id(conn, p.student_id, p.merged_into)


def consumers() -> dict[str, Batch]:
    """The consumer groups: the directory copy, and merges (nothing read across topics, so nothing locked)."""
    return {
        GROUP: DirectoryCopy().subscription(),
        MERGES_GROUP: Batch(frozenset({type_of(StudentMerged)}), on_merges),
    }
