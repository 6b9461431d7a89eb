"""Event handlers: every contract event type goes through the one projection into the facts."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.reporting.domain.projection import PROJECTIONS, project
from services.reporting.store.facts import apply_ops
from shared.events import Event
from shared.inbox import Handler


async def on_event(conn: asyncpg.Connection, event: Event[Any]) -> None:
    """Merge the event's facts and mark what the next refresh must recompute (runs in the inbox transaction)."""
    ops = project(event.envelope.type, event.payload)
    if ops:
        await apply_ops(conn, ops, track=True)


def handlers() -> dict[str, Handler]:
    """Every event type of the committees, visits and outreach contracts."""
    import shared.contracts.committees
    import shared.contracts.outreach
    import shared.contracts.visits  # noqa: F401  (registers the contracts)

    return dict.fromkeys(PROJECTIONS, on_event)
