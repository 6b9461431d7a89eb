"""A duplicate child merged into another (committees' `student.merged`): what becomes of their cases (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.contracts.common import SEVERITY_ORDER, Category, Severity

MERGED = "merged_duplicate"  # the close reason of a duplicate's case folded into the survivor's


@dataclass(frozen=True)
class OpenCase:
    """An open case as the merge sees it."""

    case_id: str
    risk_level: Severity
    categories: tuple[Category, ...]


@dataclass(frozen=True)
class CaseMerge:
    """What the merge does to the open cases: `fold` the duplicate's into the survivor's (its findings and carers
    join it, it closes as merged; the survivor's risk and categories take in the duplicate's), `move` the
    duplicate's open case to the survivor, or `none`."""

    action: Literal["fold", "move", "none"]
    risk_level: Severity | None = None
    categories: tuple[Category, ...] = ()


def merge_cases(survivor: OpenCase | None, duplicate: OpenCase | None) -> CaseMerge:
    """One child, one open case: the survivor's if it has one, else the duplicate's."""
    if duplicate is None:
        return CaseMerge("none")
    if survivor is None:
        return CaseMerge("move")
    risk = max(survivor.risk_level, duplicate.risk_level, key=SEVERITY_ORDER.__getitem__)
    categories = tuple(sorted({*survivor.categories, *duplicate.categories}))
    return CaseMerge("fold", risk, categories)
