"""COPY text data built column by column (`db.copy_columns`, `db.copy_rows`) is the value-by-value encoding's."""

from __future__ import annotations

from datetime import date

from shared import db
from shared.contracts.common import LivingArrangement


def _one_by_one(rows):
    return "".join("\t".join(map(db._copy_field, row)) + "\n" for row in rows).encode()


ROWS = [
    ("plain", None, True, date(2012, 2, 29), ["a", "b"], "x", LivingArrangement.GRANDPARENTS, None),
    (
        'tab\there\nnew "q" \\N \\ back\rcr',
        "张三 ✓",
        False,
        None,
        ['q"uote', "co,mma", "{br}", "back\\slash", ""],
        "y",
        "both_parents",
        None,
    ),
    ("\\", "", None, date(1990, 1, 1), [], "z", None, None),
]


def test_column_by_column_is_the_value_by_value_encoding():
    assert db.copy_rows(ROWS) == _one_by_one(ROWS)
    assert db.copy_columns([list(col) for col in zip(*ROWS, strict=True)]) == _one_by_one(ROWS)
    # a column escaped only when one of its values needs it, NULLs beside them; booleans and dates alone
    clean = [(f"s{i}", None if i % 2 else f"t{i}", i % 3 == 0, date(2016, 1, 1 + i)) for i in range(7)]
    assert db.copy_rows(clean) == _one_by_one(clean)
    dirty = [*clean, ("a\\b", "c\td", False, date(2016, 2, 1))]
    assert db.copy_rows(dirty) == _one_by_one(dirty)
    assert db.copy_rows([]) == b"" == db.copy_columns([])
