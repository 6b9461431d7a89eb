"""The Ten Requirements checklist: versioned configuration loaded from config/checklists.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).parent / "config" / "checklists.yaml"


@dataclass(frozen=True)
class ChecklistItem:
    """One requirement: a stable id and its Chinese and English labels."""

    id: str
    zh: str
    en: str


@dataclass(frozen=True)
class Checklists:
    """Every checklist version, and the one in force for new campaigns."""

    current: str
    versions: dict[str, tuple[ChecklistItem, ...]]

    def items(self, version: str) -> tuple[ChecklistItem, ...]:
        """The items of a version; KeyError when unknown."""
        return self.versions[version]


def parse(doc: dict[str, Any]) -> Checklists:
    """Checklists from a parsed YAML document (validates ids are unique and `current` exists)."""
    versions: dict[str, tuple[ChecklistItem, ...]] = {}
    for version, items in doc["versions"].items():
        parsed = tuple(ChecklistItem(id=str(i["id"]), zh=str(i["zh"]), en=str(i["en"])) for i in items)
        if len({i.id for i in parsed}) != len(parsed):
            raise ValueError(f"checklist version {version} has duplicate item ids")
        versions[str(version)] = parsed
    current = str(doc["current"])
    if current not in versions:
        raise ValueError(f"current checklist version {current} is not defined")
    return Checklists(current=current, versions=versions)


@cache
def load(path: Path = CONFIG) -> Checklists:
    """The configured checklists (read once per process)."""
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")))
