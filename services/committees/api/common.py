"""What the routes share: the kit's paging parameters (the cursor decoded to the id a page continues after) and the
write dependency (caller, clock, pool, Idempotency-Key; answers carry their resource's ETag)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse

from shared import idempotency, openapi, pages, versions
from shared.auth import CurrentPrincipal, Principal
from shared.clock import Clock
from shared.web import CurrentClock, Pool

Audit = Callable[[asyncpg.Connection, Principal, Any], Awaitable[None]]

Limit = pages.Limit


def _after(cursor: pages.Cursor = None) -> str | None:
    """The id a page continues after (every committees list is in id order); 422 for a forged cursor."""
    key = pages.after(cursor, str)
    return None if key is None else str(key[0])


Cursor = Annotated[str | None, Depends(_after)]
Under = Annotated[str | None, Query(description="an org unit id: list inside its subtree (default: the caller's own)")]
UNKNOWN_UNDER = openapi.errors({404: "no org unit has the id given as `under`"})


def unknown(*fields: str) -> dict[int | str, dict[str, Any]]:
    """The 404 of a write whose body names something that does not exist (`problems.unknown` points at it)."""
    return openapi.errors({404: "nothing has the id given in " + " or ".join(f"`{f}`" for f in fields)})


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
        response = await idempotency.write(
            self.request,
            self.principal,
            self.pool,
            lambda conn: usecase(conn, self.principal, self.clock, *args),
            status_code=route.status_code or 200,
            replayed=None if replayed is None else (lambda conn, answer: replayed(conn, self.principal, answer)),
        )
        return versions.tagged(response)  # an answer that carries its resource's version carries its ETag


async def _write(
    request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool, key: None = idempotency.KEY
) -> Write:
    """Every write honours `Idempotency-Key` (read and documented by the kit's dependency)."""
    return Write(request, principal, clock, pool)


Writes = Annotated[Write, Depends(_write)]
