"""`shared.db.Params`: a statement's parameters numbered as the conditions that apply are stated."""

from __future__ import annotations

from shared.db import Params


def test_only_the_given_filters_are_stated_and_numbered_after_the_fixed_parameters():
    p = Params(["campaign", "/620400"])
    where = p.conditions(
        ("teacher_id = {}", "t1"),
        ("status = {}", None),  # not given: not stated, no parameter
        ("(teacher_id, family_id) > ({}, {})", ("t1", "f9")),  # a tuple fills one placeholder per item
        ("class_id = ANY({}::text[])", ["c1", "c2"]),  # a list is one value
    )
    assert where == ["teacher_id = $3", "(teacher_id, family_id) > ($4, $5)", "class_id = ANY($6::text[])"]
    assert p == ["campaign", "/620400", "t1", "t1", "f9", ["c1", "c2"]]
    assert p.add(200) == "$7" and p[-1] == 200


def test_false_and_empty_values_are_given_values_and_a_template_may_use_a_placeholder_twice():
    p = Params()
    where = p.conditions(("overdue = {}", False), ("note = {}", ""), ("a < {0} OR a = {0} AND b > {1}", (3, "x")))
    assert where == ["overdue = $1", "note = $2", "a < $3 OR a = $3 AND b > $4"]
    assert p == [False, "", 3, "x"]
    assert Params().conditions(("x = {}", None)) == []
