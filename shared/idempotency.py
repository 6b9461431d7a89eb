"""`Idempotency-Key` for writes: the stored response is written in the same transaction as the change.

A route that honours the key declares `dependencies=[idempotency.KEY]`: the dependency reads and checks the header
and is what puts it into the OpenAPI document, so the document shows the header exactly where it works. It is the
only way in: `write`/`claim_of` on a route without it raise (tests/unit/kit/test_idempotency_declared.py also
checks the four documents: every write documents the header or is listed there as not honouring it, with why).

Two ways in, one store: `write` runs one request's work in its own transaction; a group commit (visits) claims the
keys of a whole group with `claim`, keeps the answers of what it wrote with `keep`, gives back the claims of what it
refused with `release`, and reads what the others got with `stored`, all inside the group's transaction. Either way
a key is answered once and replayed after: `replay` sends a stored answer again (or refuses a reused key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import Depends, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from shared.auth import Principal
from shared.openapi import PARAMETER_TEXT
from shared.problems import Problem, conflict

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
            pattern=PARAMETER_TEXT,
            description="Any unique string per intended change (a UUID): a retry with the same key and body gets "
            "the first answer again (header `Idempotent-Replayed: true`) and changes nothing; the same key with "
            "another body is a 422. Keys are per caller.",
        ),
    ] = None,
) -> None:
    """FastAPI dependency of every route that honours `Idempotency-Key` (see `KEY`)."""
    request.state.idempotency_key = key


KEY = Depends(idempotency_key)  # `dependencies=[idempotency.KEY]` on each route that answers through `write`


@dataclass(frozen=True)
class Claim:
    """One request's key: who sent it, the key, and what the request was (to refuse a key reused for another)."""

    principal: str
    key: str
    method: str
    path: str
    request_hash: str

    @property
    def id(self) -> tuple[str, str]:
        """What the key is unique by: (principal, key)."""
        return self.principal, self.key


@dataclass(frozen=True)
class Stored:
    """The answer kept for a key, and the request it answered."""

    status: int
    body: Any
    path: str
    request_hash: str


async def claim_of(request: Request, principal: Principal) -> Claim | None:
    """The request's claim, or None without an `Idempotency-Key`; 422 for a key of the wrong length."""
    key = _key(request)
    if key is None:
        return None
    digest = hashlib.sha256(await request.body()).hexdigest()
    return Claim(principal.subject, key, request.method, request.url.path, digest)


async def claim(conn: asyncpg.Connection, claims: Sequence[Claim]) -> set[tuple[str, str]]:
    """Claim keys in the caller's transaction; returns the (principal, key) pairs this transaction got.

    A key another transaction holds makes this wait until that one commits (then it is not ours) or rolls back
    (then it is). Keys are taken in sorted order, so two groups claiming overlapping keys cannot deadlock."""
    if not claims:
        return set()
    ordered = sorted({c.id: c for c in claims}.values(), key=lambda c: c.id)
    rows = await conn.fetch(
        "INSERT INTO idempotency_keys (principal, key, method, path, request_hash) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) ORDER BY 1, 2 "
        "ON CONFLICT DO NOTHING RETURNING principal, key",
        *(
            list(col)
            for col in zip(*((c.principal, c.key, c.method, c.path, c.request_hash) for c in ordered), strict=True)
        ),
    )
    return {(r["principal"], r["key"]) for r in rows}


def _json(body: Any) -> str:
    """A JSON-able body as JSON text: orjson writes what it knows (dicts, lists, strings, numbers, dates, enums) in
    one pass, FastAPI's encoder the rest (models, sets, Decimals). A 500-visit batch answer went through
    `jsonable_encoder` for ~7 % of its CPU."""
    return orjson.dumps(body, default=jsonable_encoder, option=orjson.OPT_NON_STR_KEYS).decode()


async def keep(conn: asyncpg.Connection, answers: Sequence[tuple[Claim, int, Any]]) -> None:
    """Store the answer (status, JSON-able body) of each claimed key, in the caller's transaction."""
    if answers:
        await conn.execute(
            "UPDATE idempotency_keys k SET status = a.status, body = a.body::jsonb "
            "FROM unnest($1::text[], $2::text[], $3::int[], $4::text[]) AS a(principal, key, status, body) "
            "WHERE k.principal = a.principal AND k.key = a.key",
            [c.principal for c, _, _ in answers],
            [c.key for c, _, _ in answers],
            [s for _, s, _ in answers],
            [_json(b) for _, _, b in answers],
        )


async def release(conn: asyncpg.Connection, claims: Sequence[Claim]) -> None:
    """Give back claimed keys whose request was refused: a refusal is not kept, the request may be sent again."""
    if claims:
        await conn.execute(
            "DELETE FROM idempotency_keys k USING unnest($1::text[], $2::text[]) AS c(principal, key) "
            "WHERE k.principal = c.principal AND k.key = c.key",
            [c.principal for c in claims],
            [c.key for c in claims],
        )


async def stored(conn: asyncpg.Connection | asyncpg.Pool, claims: Sequence[Claim]) -> dict[tuple[str, str], Stored]:
    """The answers kept for these keys (a key whose claim is still open has none)."""
    if not claims:
        return {}
    rows = await conn.fetch(
        "SELECT k.principal, k.key, k.status, k.body, k.path, k.request_hash FROM idempotency_keys k "
        "JOIN unnest($1::text[], $2::text[]) AS c(principal, key) ON k.principal = c.principal AND k.key = c.key "
        "WHERE k.status IS NOT NULL",
        [c.principal for c in claims],
        [c.key for c in claims],
    )
    return {(r["principal"], r["key"]): Stored(r["status"], r["body"], r["path"], r["request_hash"]) for r in rows}


def replay(claim: Claim, answer: Stored | None) -> JSONResponse:
    """The stored answer sent again; 422 when the key was used for a different request, 409 while its first
    request is still in progress (or was refused, so nothing is kept yet)."""
    if answer is None:
        raise conflict("a request with this Idempotency-Key is in progress; send it again later")
    if answer.request_hash != claim.request_hash or answer.path != claim.path:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "this Idempotency-Key was already used for a different request",
            errors=[{"pointer": "/header/Idempotency-Key", "detail": "reused with a different request"}],
        )
    return JSONResponse(answer.body, status_code=answer.status, headers={"Idempotent-Replayed": "true"})


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
    mine = await claim_of(request, principal)
    async with pool.acquire() as conn:
        if mine is None:
            async with conn.transaction():
                body = jsonable_encoder(await work(conn))
            return JSONResponse(body, status_code=status_code)
        async with conn.transaction():
            # A concurrent request with the same key waits here until the first one commits or rolls back.
            if await claim(conn, [mine]):
                body = jsonable_encoder(await work(conn))
                await keep(conn, [(mine, status_code, body)])
                return JSONResponse(body, status_code=status_code)
        answer = (await stored(conn, [mine])).get(mine.id)
    response = replay(mine, answer)
    if replayed is not None:
        async with pool.acquire() as conn, conn.transaction():
            await replayed(conn, answer.body if answer is not None else None)
    return response


def _key(request: Request) -> str | None:
    """The key the route's `KEY` dependency read. A route that answers through `write` or `claim_of` without
    declaring `KEY` is a programming error: its OpenAPI document would not show the header, so it must not honour it.
    """
    try:
        key: str | None = request.state.idempotency_key
    except AttributeError:
        route = getattr(request.scope.get("route"), "path", request.url.path)
        raise RuntimeError(
            f"{request.method} {route} honours Idempotency-Key without declaring idempotency.KEY"
        ) from None
    return key
