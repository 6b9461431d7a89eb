"""Distinct counts made additive: weights for an entity seen at several org paths (pure)."""

from __future__ import annotations

from collections.abc import Iterable


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


def weights(paths: Iterable[str]) -> dict[str, int]:
    """Node weights whose sum over any subtree is 1 when the entity occurs in it, else 0.

    With the distinct paths in depth-first order p1..pm: +1 at every pi and -1 at the common ancestor of each
    consecutive pair (a subtree holds a contiguous run of the pi, and exactly the pairs inside that run).
    """
    ordered = sorted({p.rstrip("/") for p in paths}, key=_segments)
    out: dict[str, int] = {}
    prev: list[str] | None = None
    for p in ordered:
        seg = _segments(p)
        out[p] = out.get(p, 0) + 1
        if prev is not None:
            anc = lca(prev, seg)
            out[anc] = out.get(anc, 0) - 1
        prev = seg
    return {node: w for node, w in out.items() if w}
