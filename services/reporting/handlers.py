"""Event handlers: every contract event type goes through the one projection into the facts."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.reporting.domain.projection import USED, project
from services.reporting.store.facts import upsert_facts
from shared.events import Event
from shared.inbox import Batch


async def on_events(conn: asyncpg.Connection, events: list[Event[Any]]) -> None:
    """Merge a batch's facts and mark what the next refresh must recompute (runs in the inbox transaction).

    The merge rules are order-independent, so a batch of a thousand events gives the same facts as a thousand
    batches of one, in a dozen statements instead of several per event.
    """
    ops = [op for event in events for op in project(event.envelope.type, event.payload)]
    if ops:
        await upsert_facts(conn, ops, track=True)


def handlers() -> Batch:
    """Every event type of the committees, visits and outreach contracts that an indicator needs."""
    import shared.contracts.committees
    import shared.contracts.outreach
    import shared.contracts.visits  # noqa: F401  (registers the contracts)

    return Batch(USED, on_events)
