"""Entity weights (distinct paths plus corrections) make distinct counts additive over any subtree."""

from __future__ import annotations

import random

from services.reporting.domain.entities import corrections, lca
from services.reporting.domain.paths import ancestors


def weights(paths: list[str]) -> dict[str, int]:
    """What the read model sums for an entity: +1 at each distinct path (its leaf rows) plus the corrections."""
    out = {p.rstrip("/"): 1 for p in paths}
    for node, c in corrections(out).items():
        out[node] = out.get(node, 0) + c
    return {node: w for node, w in out.items() if w}


def subtree_sum(w: dict[str, int], node: str) -> int:
    return sum(v for p, v in w.items() if p == node or p.startswith(node + "/"))


def test_single_path_is_one_row():
    assert weights(["/c/d/s/g/k"]) == {"/c/d/s/g/k": 1}


def test_two_classes_of_one_school():
    w = weights(["/c/d/s/g1/k1", "/c/d/s/g2/k2", "/c/d/s/g1/k1"])
    assert w == {"/c/d/s/g1/k1": 1, "/c/d/s/g2/k2": 1, "/c/d/s": -1}


def test_lca_and_prefix_paths():
    assert lca(["c", "d", "s"], ["c", "d", "t"]) == "/c/d"
    assert weights(["/c/d", "/c/d/s"]) == {"/c/d/s": 1}
    # '-' sorts before '/': depth-first order must compare segments, not strings.
    w = weights(["/c/d/s", "/c/d/s-x", "/c/d/s/g"])
    assert subtree_sum(w, "/c/d/s") == 1 and subtree_sum(w, "/c/d/s-x") == 1 and subtree_sum(w, "/c") == 1


def test_random_trees_match_a_brute_force_distinct_count():
    rng = random.Random(7)
    for _ in range(300):
        paths = [
            "/c/" + "/".join(rng.choice(["a", "b", "a-b", "b0"]) for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(1, 6))
        ]
        w = weights(paths)
        nodes = {a for p in paths for a in ancestors(p)} | {"/c/a/zz"}
        for node in nodes:
            occurs = any(p == node or p.startswith(node + "/") for p in paths)
            assert subtree_sum(w, node) == int(occurs), (paths, node)


def test_corrections_are_the_weights_without_the_paths():
    assert corrections(["/c/d/s/g/k"]) == {}
    assert corrections(["/c/d/s/g1/k1", "/c/d/s/g2/k2", "/c/d/s/g1/k1"]) == {"/c/d/s": -1}
    assert corrections(["/c/d", "/c/d/s"]) == {"/c/d": -1}  # with +1 at /c/d the weight there is 0
    assert corrections(["/c/a/x", "/c/a/y", "/c/b"]) == {"/c/a": -1, "/c": -1}
