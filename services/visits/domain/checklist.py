"""Visit vocabularies: the Ten Requirements checklist (config/checklists.yaml, versioned, with how its requirements
are checked) and the guidance topics (the contract's `GuidanceTopic`), each with stable ids and zh/en labels."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from shared.contracts.common import GuidanceTopic

CONFIG = Path(__file__).parents[1] / "config" / "checklists.yaml"


@dataclass(frozen=True)
class ChecklistItem:
    """One requirement: a stable id and its Chinese and English labels."""

    id: str
    zh: str
    en: str


@dataclass(frozen=True)
class RequirementRules:
    """How requirements are checked: the mandatory ones, the recording delay allowed, which visit modes must be made
    in pairs, and the local time of visit dates."""

    mandatory: frozenset[str] = frozenset()
    record_within_hours: float = 48
    pairs_modes: frozenset[str] = frozenset({"in_home"})
    utc_offset_hours: float = 8


@dataclass(frozen=True)
class Checklists:
    """Every checklist version, the one in force for new campaigns, and how requirements are checked."""

    current: str
    versions: dict[str, tuple[ChecklistItem, ...]]
    requirements: RequirementRules = RequirementRules()

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
    req = doc.get("requirements") or {}
    rules = RequirementRules(
        mandatory=frozenset(str(i) for i in req.get("mandatory", [])),
        record_within_hours=float(req.get("record_within_hours", 48)),
        pairs_modes=frozenset(str(m) for m in req.get("pairs_modes", ["in_home"])),
        utc_offset_hours=float(req.get("utc_offset_hours", 8)),
    )
    return Checklists(current=current, versions=versions, requirements=rules)


@cache
def load(path: Path = CONFIG) -> Checklists:
    """The configured checklists (read once per process)."""
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")))


def guidance_topics() -> dict[str, ChecklistItem]:
    """The guidance topic vocabulary by code (the contract's enum and its labels)."""
    return {t.value: ChecklistItem(id=t.value, zh=t.zh, en=t.en) for t in GuidanceTopic}
