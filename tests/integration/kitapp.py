"""A tiny service built only from the kit, used to prove the kit's guarantees against the real stack."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from shared import idempotency, scope
from shared.auth import ADMINS, CurrentPrincipal, Role
from shared.events import Event, Payload, event_type, occurred_at
from shared.outbox import add_event
from shared.settings import ServiceSettings
from shared.web import Pool, ServiceSpec, create_app

TOPIC = "kittest.item.events"


class KitSettings(ServiceSettings):
    """Settings of the test service."""

    service_name: ClassVar[str] = "kittest"


@event_type("kittest.item.added.v1", topic=TOPIC, key="item_id")
class ItemAdded(Payload):
    """An item was added (test contract)."""

    item_id: str
    seq: int
    org_path: str
    occurred_at: datetime


class ItemIn(BaseModel):
    """Body of POST /api/v1/items."""

    item_id: str = Field(min_length=1, max_length=50)
    org_path: str = Field(pattern=r"^/[\w/-]+$")
    seq: int = Field(ge=0)


router = APIRouter(prefix="/api/v1")


@router.post("/items", status_code=201, dependencies=[idempotency.KEY])
async def add_item(body: ItemIn, request: Request, principal: CurrentPrincipal, pool: Pool) -> Any:
    """Store an item and its event in one transaction."""
    principal.require(*ADMINS)
    scope.require(principal, body.org_path)

    async def work(conn: asyncpg.Connection) -> dict[str, Any]:
        await conn.execute("INSERT INTO items VALUES ($1, $2, $3)", body.item_id, body.org_path, body.seq)
        await add_event(
            conn, ItemAdded(item_id=body.item_id, seq=body.seq, org_path=body.org_path, occurred_at=occurred_at())
        )
        return {"item_id": body.item_id, "seq": body.seq}

    return await idempotency.write(request, principal, pool, work)


@router.get("/items/{item_id}")
async def get_item(item_id: str, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """Read one item (teachers included)."""
    principal.require(*ADMINS, Role.TEACHER)
    row = await pool.fetchrow("SELECT * FROM items WHERE item_id = $1", item_id)
    return dict(row) if row else {}


@router.get("/slow")
async def slow(seconds: float, principal: CurrentPrincipal, pool: Pool) -> dict[str, Any]:
    """A query that takes `seconds` (to be caught by a database crash mid-request)."""
    principal.require(*ADMINS)
    await pool.execute("SELECT pg_sleep($1)", seconds)
    return {"slept": seconds}


async def on_item_added(conn: asyncpg.Connection, event: Event[ItemAdded]) -> None:
    """Apply: one row per event; the 'fail' item always raises (a failing handler); a locked item waits."""
    if event.payload.item_id.startswith("fail"):
        raise RuntimeError("handler refuses this item")
    # Takes the item's row lock if another transaction holds it: PostgreSQL answers 55P03 (a transient error).
    await conn.execute("SELECT 1 FROM items WHERE item_id = $1 FOR UPDATE NOWAIT", event.payload.item_id)
    await conn.execute(
        "INSERT INTO applied (event_id, item_id, seq) VALUES ($1, $2, $3)",
        event.envelope.id,
        event.payload.item_id,
        event.payload.seq,
    )
    await conn.execute(
        "INSERT INTO applied_counts VALUES ($1, 1) ON CONFLICT (item_id) DO UPDATE SET n = applied_counts.n + 1",
        event.payload.item_id,
    )


BATCH_SIZES: list[int] = []  # sizes of the batches `on_items_added` was given, in order


async def on_items_added(conn: asyncpg.Connection, events: list[Event[ItemAdded]]) -> None:
    """The same rules set-based (a kit `Batch` subscription): all rows in two statements."""
    if any(e.payload.item_id.startswith("fail") for e in events):
        raise RuntimeError("handler refuses this item")
    BATCH_SIZES.append(len(events))
    await conn.execute(
        "INSERT INTO applied (event_id, item_id, seq) SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[])",
        [e.envelope.id for e in events],
        [e.payload.item_id for e in events],
        [e.payload.seq for e in events],
    )
    await conn.execute(
        "INSERT INTO applied_counts SELECT item_id, count(*) FROM unnest($1::text[]) AS u(item_id) GROUP BY item_id"
        " ON CONFLICT (item_id) DO UPDATE SET n = applied_counts.n + excluded.n",
        [e.payload.item_id for e in events],
    )


def spec(settings: KitSettings, *, consume: bool = True) -> ServiceSpec:
    """The test service: owns one topic, consumes it back, exposes /api/v1/items."""
    return ServiceSpec(
        settings=settings,
        migrations=Path(__file__).parent / "kitapp_migrations",
        topics=[TOPIC],
        routers=[router],
        consumers={"kittest.items": {"kittest.item.added.v1": on_item_added}} if consume else {},
    )


def app(settings: KitSettings, *, consume: bool = True) -> Any:
    """The FastAPI app of the test service."""
    return create_app(spec(settings, consume=consume))
