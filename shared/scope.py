"""The one access rule of every service: org-subtree tests, the SQL subtree filter, list scopes and 403 problems.

Org paths look like `/city/district/school/grade/class`; a caller's token names one path and the caller acts inside
its subtree. Org ids are opaque strings: `_`, `%` and `\\` in an id are plain characters, never wildcards.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from shared.auth import CurrentPrincipal, Principal
from shared.problems import Problem

OUT_OF_SCOPE = "the resource lies outside your organisation scope"

# Any org path a client may name: segments of printable characters (no control characters, no empty segments).
ORG_PATH_PATTERN = r"^(/[^/\x00-\x1f\x7f-\x9f]+)+/?$"  # no control characters (C0, DEL, C1), as the kit refuses


def normalize(path: str) -> str:
    """`path` without a trailing slash (the city root `/` becomes ``, which every path lies under)."""
    return path.rstrip("/")


def within(path: str, scope: str) -> bool:
    """Whether org `path` lies in the subtree rooted at `scope` (the root itself included)."""
    s, p = normalize(scope), normalize(path)
    return p == s or p.startswith(s + "/")


def overlaps(a: str, b: str) -> bool:
    """Whether one of two subtrees contains the other (e.g. a campaign's scope and a caller's)."""
    return within(a, b) or within(b, a)


def like_escape(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (escape character `\\`, PostgreSQL's default)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_below(scope: str) -> str:
    """LIKE pattern for the strict descendants of `scope`."""
    return like_escape(normalize(scope)) + "/%"


def sql(column: str, param: int) -> str:
    """SQL: `column` lies in the subtree bound by `args(scope)` as parameters $param and $param+1."""
    return f"({column} = ${param} OR {column} LIKE ${param + 1} ESCAPE '\\')"


def sql_contains(column: str, param: int) -> str:
    """SQL: the subtree rooted at `column` contains the path bound as $param (normalized, e.g. `args(path)[0]`)."""
    return f"starts_with(${param} || '/', {column} || '/')"


def args(scope: str) -> tuple[str, str]:
    """The two query parameters `sql()` expects for `scope`."""
    return normalize(scope), like_below(scope)


def forbidden(detail: str = OUT_OF_SCOPE) -> Problem:
    """403 problem: the caller is signed in but may not do this."""
    return Problem(403, "Forbidden", detail)


def covers(principal: Principal, path: str) -> bool:
    """Whether `path` lies in the caller's subtree."""
    return within(path, principal.org_path)


def require(principal: Principal, *paths: str, detail: str = OUT_OF_SCOPE) -> None:
    """403 unless EVERY path lies in the caller's subtree (writes touch every org unit they name)."""
    if not all(covers(principal, p) for p in paths):
        raise forbidden(detail)


def narrow(principal: Principal, requested: str | None) -> str:
    """The subtree a list covers: the caller's own, or the narrower `requested` inside it (403 outside)."""
    if requested is None:
        return normalize(principal.org_path)
    require(principal, requested)
    return normalize(requested)


OrgPathQuery = Annotated[
    str | None,
    Query(max_length=300, pattern=ORG_PATH_PATTERN, description="an org subtree inside yours (default: yours)"),
]


async def list_scope(principal: CurrentPrincipal, org_path: OrgPathQuery = None) -> str:
    """FastAPI dependency: the subtree a list route reads, from `?org_path=` narrowed inside the caller's."""
    return narrow(principal, org_path)


ListScope = Annotated[str, Depends(list_scope)]
