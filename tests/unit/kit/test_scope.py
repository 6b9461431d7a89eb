"""The one access rule: subtree tests, escaped LIKE patterns, list scopes."""

from __future__ import annotations

import re

import pytest

from shared import scope
from shared.auth import Principal, Role
from shared.problems import Problem


def admin(org_path: str) -> Principal:
    return Principal(subject="t", roles=frozenset({Role.SCHOOL_ADMIN}), org_path=org_path)


@pytest.mark.parametrize(
    ("path", "root", "inside"),
    [
        ("/c/d/s1", "/c/d/s1", True),
        ("/c/d/s1/g1/k1", "/c/d/s1", True),
        ("/c/d/s1/", "/c/d/s1", True),
        ("/c/d/s1", "/c/d/s1/", True),
        ("/c/d/s10", "/c/d/s1", False),  # a sibling whose id starts with ours
        ("/c/d", "/c/d/s1", False),  # the parent
        ("/c/d/sx01", "/c/d/s_01", False),  # `_` is a character, not a wildcard
        ("/c/d/s-anything", "/c/d/s%", False),
        ("/c/d/s%/k", "/c/d/s%", True),
        ("/c/d/anything", "/", True),  # the root covers everything
    ],
)
def test_within(path: str, root: str, inside: bool) -> None:
    assert scope.within(path, root) is inside


def test_overlaps_either_way() -> None:
    assert scope.overlaps("/c/d", "/c/d/s1") and scope.overlaps("/c/d/s1", "/c/d")
    assert not scope.overlaps("/c/d1", "/c/d2")


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """PostgreSQL LIKE semantics with `\\` as the escape character, as a regex (for a pure check)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 1
            out.append(re.escape(pattern[i]))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


STRANGERS = ("/c/d/sx01/k", "/c/d/s01/k", "/c/d/sAB/k", "/c/d/s\\\\x/k", "/c/d/s/k", "/c/d/s1x/k", "/c/d/s1/k")


@pytest.mark.parametrize("root", ["/c/d/s_01", "/c/d/s%", "/c/d/s\\x", "/c/d/s1", "/c/d/s_%\\_/"])
def test_like_below_matches_only_descendants(root: str) -> None:
    regex = like_to_regex(scope.like_below(root))
    base = scope.normalize(root)
    assert regex.fullmatch(base + "/k1") and regex.fullmatch(base + "/g/k")
    assert not regex.fullmatch(base)
    for path in STRANGERS:
        assert bool(regex.fullmatch(path)) is scope.within(path, root), path


def test_sql_and_args_fit_together() -> None:
    assert scope.sql("s.org_path", 3) == "(s.org_path = $3 OR s.org_path LIKE $4 ESCAPE '\\')"
    assert scope.args("/c/s_1/") == ("/c/s_1", "/c/s\\_1/%")


def test_require_needs_every_path() -> None:
    me = admin("/c/d/s1")
    scope.require(me, "/c/d/s1/k1", "/c/d/s1/k2")
    with pytest.raises(Problem) as exc:
        scope.require(me, "/c/d/s1/k1", "/c/d/s2/k1")
    assert exc.value.status == 403


def test_narrow() -> None:
    me = admin("/c/d_1/")
    assert scope.narrow(me, None) == "/c/d_1"
    assert scope.narrow(me, "/c/d_1/s1/") == "/c/d_1/s1"
    for outside in ("/c", "/c/dx1/s1", "/c/d_10"):
        with pytest.raises(Problem) as exc:
            scope.narrow(me, outside)
        assert exc.value.status == 403


def test_forbidden_is_a_403_problem() -> None:
    p = scope.forbidden("nope")
    assert (p.status, p.title, p.detail) == (403, "Forbidden", "nope")
