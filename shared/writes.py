"""The one way a route writes: `w: Writes` in its signature, `return await w.run(usecase, *args)` in its body.

`Writes` is a FastAPI dependency giving the caller, the service's clock and pool; it declares (and validates) the
`Idempotency-Key` header through the kit's `idempotency.KEY`. `run` calls the write use case as
`usecase(Write(conn, principal, clock, if_match), *args)` inside the kit's idempotent transaction
(`idempotency.write`: a repeated key answers the stored answer, a key reused for another request is refused),
answers with the route's own `status_code`, and puts the resource's version in an `ETag` when the answer carries one
(`versions.tagged`). Every write use case takes that one `Write` first: `async def leave(w: Write, staff_id: str)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from shared import idempotency, versions
from shared.auth import CurrentPrincipal, Principal
from shared.clock import Clock
from shared.versions import Precondition
from shared.web import CurrentClock, Pool

Audit = Callable[[asyncpg.Connection, Principal, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Write:
    """What a write use case works with: its transaction's connection, the caller, the service's clock and the
    request's `If-Match` (`precondition`, None without one)."""

    conn: asyncpg.Connection
    principal: Principal
    clock: Clock
    precondition: Precondition | None = None

    def check(self, version: int) -> None:
        """412 unless `If-Match` allows the resource's current `version` (read with its row locked)."""
        versions.check(version, self.precondition)


@dataclass(frozen=True)
class Writer:
    """A write route's caller, clock and connection pool; `run` answers through the kit's idempotent transaction."""

    request: Request
    principal: Principal
    clock: Clock
    pool: asyncpg.Pool

    async def run(
        self,
        usecase: Callable[..., Awaitable[Any]],
        *args: Any,
        if_match: Precondition | None = None,
        replayed: Audit | None = None,
    ) -> JSONResponse:
        """`usecase(Write(conn, principal, clock, if_match), *args)` in one transaction, answered with the route's
        status code; `replayed(conn, principal, answer)` audits an answer replayed for a repeated Idempotency-Key."""
        route = self.request.scope["route"]
        response = await idempotency.write(
            self.request,
            self.principal,
            self.pool,
            lambda conn: usecase(Write(conn, self.principal, self.clock, if_match), *args),
            status_code=route.status_code or 200,
            replayed=None if replayed is None else (lambda conn, answer: replayed(conn, self.principal, answer)),
        )
        return versions.tagged(response)  # an answer that carries its resource's version carries its ETag


async def _write(
    request: Request, principal: CurrentPrincipal, clock: CurrentClock, pool: Pool, key: None = idempotency.KEY
) -> Writer:
    """Every write honours `Idempotency-Key` (read and documented by the kit's dependency)."""
    return Writer(request, principal, clock, pool)


Writes = Annotated[Writer, Depends(_write)]
