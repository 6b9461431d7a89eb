"""Distinct counts made additive: corrections for an entity seen at several org paths (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise


def _segments(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def lca(a: list[str], b: list[str]) -> str:
    """The deepest common ancestor of two paths (as segment lists)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return "/" + "/".join(a[:n])


def corrections(paths: Iterable[str]) -> dict[str, int]:
    """What to add at each node to a count of distinct (entity, path) pairs so that any subtree counts the entity
    once when it occurs inside it, else 0.

    With the distinct paths in depth-first order p1..pm: -1 at the common ancestor of each consecutive pair (a
    subtree holds a contiguous run of the pi, and exactly the pairs inside that run). An entity at one path needs
    no correction.
    """
    ordered = sorted({p.rstrip("/") for p in paths}, key=_segments)
    out: dict[str, int] = {}
    for prev, p in pairwise(ordered):
        anc = lca(_segments(prev), _segments(p))
        out[anc] = out.get(anc, 0) - 1
    return out
