"""`Idempotency-Key` for writes: the stored response is written in the same transaction as the change.

A route that honours the key declares `dependencies=[idempotency.KEY]` and answers through `write(...)`: the
dependency reads and checks the header and is what puts it into the OpenAPI document, so the document shows the
header exactly where it works.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from shared.auth import Principal
from shared.problems import Problem

Work = Callable[[asyncpg.Connection], Awaitable[Any]]
Replayed = Callable[[asyncpg.Connection, Any], Awaitable[None]]

MAX_KEY_LENGTH = 200


async def idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description="Any unique string per intended change (a UUID): a retry with the same key and body gets "
            "the first answer again (header `Idempotent-Replayed: true`) and changes nothing; the same key with "
            "another body is a 422. Keys are per caller.",
        ),
    ] = None,
) -> None:
    """FastAPI dependency of every route that honours `Idempotency-Key` (see `KEY`)."""
    request.state.idempotency_key = key


KEY = Depends(idempotency_key)  # `dependencies=[idempotency.KEY]` on each route that answers through `write`


async def write(
    request: Request,
    principal: Principal,
    pool: asyncpg.Pool,
    work: Work,
    *,
    status_code: int = 201,
    replayed: Replayed | None = None,
) -> JSONResponse:
    """Run `work` in one transaction and answer only after commit; replay the first answer for a key.

    `replayed(conn, body)` runs in a transaction before a stored answer is sent again (e.g. to audit a replayed
    answer that carries personal data); when it fails, the replay fails.
    """
    key = _key(request)
    async with pool.acquire() as conn:
        if key is None:
            async with conn.transaction():
                body = jsonable_encoder(await work(conn))
            return JSONResponse(body, status_code=status_code)
        request_hash = hashlib.sha256(await request.body()).hexdigest()
        async with conn.transaction():
            # A concurrent request with the same key waits here until the first one commits or rolls back.
            claimed = await conn.fetchval(
                "INSERT INTO idempotency_keys (principal, key, method, path, request_hash) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
                principal.subject,
                key,
                request.method,
                request.url.path,
                request_hash,
            )
            if claimed:
                body = jsonable_encoder(await work(conn))
                await conn.execute(
                    "UPDATE idempotency_keys SET status = $3, body = $4 WHERE principal = $1 AND key = $2",
                    principal.subject,
                    key,
                    status_code,
                    body,
                )
                return JSONResponse(body, status_code=status_code)
        row = await conn.fetchrow(
            "SELECT * FROM idempotency_keys WHERE principal = $1 AND key = $2", principal.subject, key
        )
    if row["request_hash"] != request_hash or row["path"] != request.url.path:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "this Idempotency-Key was already used for a different request",
            errors=[{"pointer": "/header/Idempotency-Key", "detail": "reused with a different request"}],
        )
    if replayed is not None:
        async with pool.acquire() as conn, conn.transaction():
            await replayed(conn, row["body"])
    return JSONResponse(row["body"], status_code=row["status"], headers={"Idempotent-Replayed": "true"})


def _key(request: Request) -> str | None:
    """The key the route's `KEY` dependency read. Routes not yet declaring it: read here, checked alike."""
    if hasattr(request.state, "idempotency_key"):
        key: str | None = request.state.idempotency_key
        return key
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= MAX_KEY_LENGTH):
        raise Problem(
            422,
            "Invalid request",
            f"the Idempotency-Key header must have 1 to {MAX_KEY_LENGTH} characters",
            errors=[{"pointer": "/header/Idempotency-Key", "detail": f"must have 1 to {MAX_KEY_LENGTH} characters"}],
        )
    return key
