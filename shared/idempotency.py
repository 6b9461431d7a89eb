"""`Idempotency-Key` for POSTs: the stored response is written in the same transaction as the change."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from shared.auth import Principal
from shared.problems import Problem

Work = Callable[[asyncpg.Connection], Awaitable[Any]]
Replayed = Callable[[asyncpg.Connection, Any], Awaitable[None]]


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
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= 200):
        raise Problem(422, "Invalid Idempotency-Key", "the Idempotency-Key header must have 1 to 200 characters")
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
            errors=[{"pointer": "header/Idempotency-Key", "detail": "reused with a different request"}],
        )
    if replayed is not None:
        async with pool.acquire() as conn, conn.transaction():
            await replayed(conn, row["body"])
    return JSONResponse(row["body"], status_code=row["status"], headers={"Idempotent-Replayed": "true"})
