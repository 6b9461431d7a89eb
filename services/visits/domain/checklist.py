"""Visit vocabularies from configuration: the Ten Requirements checklist (config/checklists.yaml, versioned) and the
guidance topics (config/guidance_topics.yaml), each with stable ids and Chinese and English labels."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONFIG = Path(__file__).parents[1] / "config" / "checklists.yaml"
GUIDANCE_CONFIG = Path(__file__).parents[1] / "config" / "guidance_topics.yaml"


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


@cache
def guidance_topics(path: Path = GUIDANCE_CONFIG) -> dict[str, ChecklistItem]:
    """The guidance topic vocabulary by code (read once per process)."""
    items = [
        ChecklistItem(id=str(i["id"]), zh=str(i["zh"]), en=str(i["en"]))
        for i in yaml.safe_load(path.read_text())["topics"]
    ]
    if len({i.id for i in items}) != len(items):
        raise ValueError("guidance topic codes must be unique")
    return {i.id: i for i in items}


def guidance_code(code: str) -> str:
    """A known guidance topic code; ValueError (a 422 with the field's pointer) for anything else."""
    if code not in guidance_topics():
        raise ValueError("must be a guidance topic code (GET /api/v1/guidance-topics), not free text")
    return code
