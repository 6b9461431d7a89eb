"""Where things sit in the org tree `/city/district/school/grade/class`, and the escalation chain up it."""

from __future__ import annotations

MAX_ESCALATION_LEVEL = 2  # 0 = school, 1 = district, 2 = city


def _parts(org_path: str) -> list[str]:
    return [p for p in org_path.split("/") if p]


def org_levels(org_path: str) -> list[str]:
    """The school, district and city paths above a class path, nearest first (only those the path has)."""
    parts = _parts(org_path)
    return ["/" + "/".join(parts[:n]) for n in (3, 2, 1) if len(parts) >= n]


def school_path(org_path: str) -> str:
    """The path cut at the school (what public events may carry)."""
    return "/" + "/".join(_parts(org_path)[:3])


def class_of(org_path: str) -> str | None:
    """The class id of a class path `/city/district/school/grade/class`."""
    parts = _parts(org_path)
    return parts[4] if len(parts) >= 5 else None


def escalation_target(org_path: str, level: int) -> str:
    """The org path responsible at an escalation level: 0 school, 1 district, 2 city."""
    parts = _parts(org_path)
    keep = {0: 3, 1: 2, 2: 1}[min(level, MAX_ESCALATION_LEVEL)]
    return "/" + "/".join(parts[: min(keep, len(parts))])
