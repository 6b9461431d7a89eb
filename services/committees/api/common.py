"""What the routes share: the paging parameters (a forged cursor is 422) and the write dependency."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from services.committees.domain.rules import RuleBroken, decode_cursor
from shared import idempotency
from shared.auth import CurrentPrincipal, Principal
from shared.clock import Clock
from shared.problems import invalid
from shared.web import CurrentClock, Pool

Audit = Callable[[asyncpg.Connection, Principal, Any], Awaitable[None]]

MAX_LIMIT = 500
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")]


def _after(cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None) -> str | None:
    """The id a cursor continues after (422 for a forged cursor)."""
    try:
        return decode_cursor(cursor)
    except RuleBroken as exc:
        raise invalid("/query/cursor", exc.reason) from None


Cursor = Annotated[str | None, Depends(_after)]


@dataclass(frozen=True)
class Write:
    """A write route's caller, clock and connection pool; `run` answers through the kit's idempotent transaction."""

    request: Request
    principal: Principal
    clock: Clock
    pool: asyncpg.Pool

    async def run(
        self, usecase: Callable[..., Awaitable[Any]], *args: Any, replayed: Audit | None = None
    ) -> JSONResponse:
        """`usecase(conn, principal, clock, *args)` in one transaction, answered with the route's status code;
        `replayed(conn, principal, answer)` audits an answer replayed for a repeated Idempotency-Key."""
        route = self.request.scope["route"]
        return await idempotency.write(
            self.request,
            self.principal,
            self.pool,
            lambda conn: usecase(conn, self.principal, self.clock, *args),
            status_code=route.status_code or 200,
            replayed=None if replayed is None else (lambda conn, answer: replayed(conn, self.principal, answer)),
        )


async def _write(request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool) -> Write:
    return Write(request, principal, clock, pool)


Writes = Annotated[Write, Depends(_write)]
