"""Org paths (`/city/district/school/...`): pure arithmetic on them."""

from __future__ import annotations


def depth(path: str) -> int:
    """1 for the city, 2 for a district, 3 for a school, ..."""
    return path.count("/")


def parent_of(path: str) -> str:
    """The parent path ('' for the root)."""
    return path.rsplit("/", 1)[0] if path.count("/") > 1 else ""


def ancestors(path: str) -> list[str]:
    """Every prefix of a path, the root first."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]
