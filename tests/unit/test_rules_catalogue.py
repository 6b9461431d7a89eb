"""docs/rules.md cannot go stale: every rule names one importable function and one existing test."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "rules.md"
FUNCTION = re.compile(r"^`([a-z_][\w.]*):([A-Za-z_][\w.]*)`$")
TEST = re.compile(r"^`(tests/[\w/]+\.py)::(test_\w+)`$")


def rows() -> list[tuple[str, str, str]]:
    """(rule, function, test) of every table row under a heading."""
    out = []
    for line in CATALOGUE.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) != 3 or cells[0] in ("rule", "") or set(cells[0]) <= {"-"}:
            continue
        out.append((cells[0], cells[1], cells[2]))
    return out


def test_the_catalogue_lists_rules_in_every_part():
    found = rows()
    assert len(found) >= 30
    for module in ("services.outreach.", "services.visits.", "services.reporting.", "services.committees."):
        assert any(f"`{module}" in function for _, function, _ in found), module


@pytest.mark.parametrize("path", sorted(ROOT.glob("services/*/domain/rules.py")), ids=lambda p: p.parts[-3])
def test_every_function_of_a_rules_module_is_catalogued(path):
    """A service's `domain/rules.py` holds rules only: each of its public functions has a row."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    listed = {m[2] for _, function, _ in rows() if (m := FUNCTION.match(function)) and m[1] == module}
    public = {
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }
    assert public - listed == set(), f"rules of {module} missing from docs/rules.md"


@pytest.mark.parametrize(("rule", "function", "test"), rows(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_each_rule_links_one_function_and_one_test_that_exist(rule, function, test):
    fm = FUNCTION.match(function)
    assert fm, f"{rule!r}: the function must be written `package.module:function`, not {function!r}"
    target: object = importlib.import_module(fm[1])
    for part in fm[2].split("."):
        target = getattr(target, part)  # AttributeError names what moved
    assert callable(target), f"{function} is not a function"

    tm = TEST.match(test)
    assert tm, f"{rule!r}: the test must be written `tests/….py::test_name`, not {test!r}"
    path = ROOT / tm[1]
    assert path.is_file(), f"{test}: no such test file"
    defined = {
        node.name
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    assert tm[2] in defined, f"{test}: no such test function"
