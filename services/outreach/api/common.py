"""Helpers shared by the routes: settings, scoping and who may act on a case."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Query, Request

from services.outreach.settings import OutreachSettings, Rules
from shared import scope
from shared.auth import ADMINS, Principal, Role
from shared.problems import not_found

CARER_ROLES = (Role.TEACHER, Role.MENTAL_HEALTH_TEACHER)


def rules(request: Request) -> Rules:
    settings: OutreachSettings = request.app.state.settings
    return settings.rules


def scope_path(principal: Principal, org_path: str | None) -> str:
    """The subtree to list: the caller's own unless a narrower one inside it is asked for."""
    return scope.narrow(principal, org_path)


async def is_carer(conn: asyncpg.Connection | asyncpg.Pool, principal: Principal, case_id: str) -> bool:
    if not principal.staff_id or not principal.has(*CARER_ROLES):
        return False
    found: bool | None = await conn.fetchval(
        "SELECT true FROM case_carers WHERE case_id = $1 AND staff_id = $2 LIMIT 1", case_id, principal.staff_id
    )
    return bool(found)


async def require_case_access(conn: asyncpg.Connection | asyncpg.Pool, principal: Principal, case: Any) -> None:
    """Admins inside whose subtree the case lies, or one of the case's carers; 404 when the case is missing."""
    if case is None:
        raise not_found("case")
    if principal.has(*ADMINS) and scope.covers(principal, case["org_path"]):
        return
    if await is_carer(conn, principal, case["case_id"]):
        return
    raise scope.forbidden("only the case's carers and administrators over its school may see or act on it")


MAX_OFFSET = 1_000_000  # deeper pages are not a use case; the bound keeps the value inside PostgreSQL's bigint
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def page(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(limit, 500)), max(0, offset)
