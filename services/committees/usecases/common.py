"""What the use cases share: ids, write scope, the domain's refusals as problems, org-unit lookups."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg

from services.committees.domain.rules import TEACHERS, Conflict, RuleBroken, can_write
from services.committees.store import org_units
from shared import audit, pages, scope
from shared.auth import ADMINS, Principal, Role
from shared.db import Conn
from shared.problems import Problem, conflict, field_error, not_found, unknown
from shared.writes import Write

READERS = (*ADMINS, *TEACHERS, Role.AUDITOR)
UNDER = "/query/under"  # the lists' subtree filter


def require_write(principal: Principal, *org_paths: str) -> None:
    """403 unless the caller may change things at EVERY one of `org_paths` (each org unit a write touches)."""
    scope.require(principal, *org_paths)
    if not all(can_write(principal, p) for p in org_paths):
        raise scope.forbidden("requires an admin role covering every org unit this write touches")


def require_change(w: Write, row: dict[str, Any]) -> None:
    """A change of a record (locked by the caller): 403 unless the caller may write where it is, 412 when `If-Match`
    names another version."""
    require_write(w.principal, row["org_path"])
    w.check(row["version"])


def require_read(principal: Principal, org_path: str) -> None:
    """Cooperation records are not personal: readers see those inside their subtree."""
    principal.require(*READERS)
    scope.require(principal, org_path)


def rule_problem(exc: RuleBroken) -> Problem:
    """422 for a broken domain rule, pointing at the field."""
    return Problem(422, "Rule broken", exc.reason, errors=[field_error("/" + exc.field, exc.reason)])


@contextmanager
def decided() -> Iterator[None]:
    """The domain's refusals as problems: a broken rule is 422 naming the field, a refused state change 409."""
    try:
        yield
    except RuleBroken as exc:
        raise rule_problem(exc) from None
    except Conflict as exc:
        raise conflict(exc.reason) from None


async def get_unit(conn: Conn, org_unit_id: str, *, lock: bool = False, field: str | None = None) -> dict[str, Any]:
    """An org unit; 404 when unknown, naming the request's `field` (a JSON pointer) when the id came from one."""
    unit = await org_units.get_org_unit(conn, org_unit_id, lock=lock)
    if unit is None:
        raise not_found("org unit") if field is None else unknown(field, "org unit")
    return unit


async def writable_unit(w: Write, org_unit_id: str, field: str, *, lock: bool = False) -> dict[str, Any]:
    """The org unit a write puts something in, named by the body's `field` (404 pointing at it when unknown), when
    the caller may write there (403)."""
    unit = await get_unit(w.conn, org_unit_id, lock=lock, field=field)
    require_write(w.principal, unit["org_path"])
    return unit


async def under_path(conn: Conn, under: str | None) -> str | None:
    """The org path of a list's `under` filter (an org unit id); 404 naming `/query/under` when unknown."""
    return None if under is None else (await get_unit(conn, under, field=UNDER))["org_path"]


async def list_path(conn: Conn, principal: Principal, under: str | None) -> str:
    """The subtree a cooperation list covers: `under` (an org unit id) or the caller's own; 403 outside it."""
    principal.require(*READERS)
    path = await under_path(conn, under) or principal.org_path
    scope.require(principal, path)
    return path


def page(items: list[dict[str, Any]], limit: int, id_field: str) -> dict[str, Any]:
    """A page of `items` (fetched with limit + 1, in `id_field` order) and the kit's cursor of the next one."""
    return pages.page(items, limit, lambda row: (row[id_field],))


View = Callable[[Conn, dict[str, Any]], Awaitable[dict[str, Any] | None]]


async def read_person(
    pool: asyncpg.Pool,
    principal: Principal,
    resource_type: str,
    person_id: str,
    load: Callable[[Conn, str], Awaitable[dict[str, Any]]],
    view: View,
) -> dict[str, Any]:
    """One person's record as the caller may see it (`view`: None when not at all, 403), the read audited."""
    principal.require(*READERS)
    async with audit.reading(pool, principal, resource_type) as read:
        row = await load(read.conn, person_id)
        seen = await view(read.conn, row)
        if seen is None:
            raise scope.forbidden()
        read.of(person_id, row["org_path"], [person_id])
    return seen


Fetch = Callable[[Conn, str, str | None, int], Awaitable[list[dict[str, Any]]]]


async def list_in_subtree(
    conn: Conn, principal: Principal, under: str | None, after: str | None, limit: int, fetch: Fetch, id_field: str
) -> dict[str, Any]:
    """A page of cooperation records under `under` (or the caller's subtree), fetched by the store's `fetch`."""
    path = await list_path(conn, principal, under)
    return page(await fetch(conn, path, after, limit + 1), limit, id_field)


async def audit_page(
    conn: Conn, principal: Principal, resource_type: str, path: str, items: list[dict[str, Any]], subject: str
) -> None:
    """A listed page that carries personal data: whose (`subject`: the field naming them) and where each sits."""
    assert isinstance(conn, asyncpg.Connection)
    paths = {x[subject]: x["org_path"] for x in items}
    await audit.record(
        conn,
        principal,
        action="list",
        resource_type=resource_type,
        org_path=path,
        subject_ids=list(paths),
        subject_paths=paths,
    )


async def audit_write(
    conn: Conn, principal: Principal, resource_type: str, resource_id: str, org_path: str, subject_id: str
) -> None:
    """A write whose answer names a person (`subject_id`), when first given and when replayed: whose, where."""
    assert isinstance(conn, asyncpg.Connection)
    await audit.record(
        conn,
        principal,
        action="write",
        resource_type=resource_type,
        resource_id=resource_id,
        org_path=org_path,
        subject_ids=[subject_id],
    )
