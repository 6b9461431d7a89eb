"""The kit's problem helpers."""

from __future__ import annotations

import pytest

from shared.problems import Problem, found


def test_found_passes_a_value_through_and_answers_404_for_none():
    row = {"id": "x"}
    assert found(row, "committee") is row
    assert found(0, "count") == 0  # only None is "not found", not every falsy value
    with pytest.raises(Problem) as caught:
        found(None, "committee")
    assert caught.value.status == 404 and "committee not found" in str(caught.value.detail)
