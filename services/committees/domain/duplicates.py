"""Likely duplicate children: the same child registered twice (a typo in the name, another school after a move).

One pure rule, `score(a, b)`: how alike two student records are, from the facts a person would compare — the name
(by its characters and by its sound: most typos of Chinese names are homophones typed through pinyin, 王晓明 for
王小明), the birth date, the county, and a guardian phone the two families share. A pair is a *candidate* when its
score reaches `THRESHOLD` and the names are alike enough (`MIN_NAME`: twins share a birth date, a county and their
parents' phones, but not a name); candidates are reported for an admin to merge or leave, never merged by a rule.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pypinyin import lazy_pinyin
from rapidfuzz import fuzz

from services.committees.domain.vocabularies import DuplicateReason

# Weights of the evidence (sum > 1: strong evidence saturates at 1.0).
NAME = 0.45
BIRTH_DATE = 0.25
COUNTY = 0.10
GUARDIAN_PHONE = 0.30
THRESHOLD = 0.7  # e.g. the same name, birth date and county (0.80); a homophone name, a shared phone, ...
MIN_NAME = 0.6  # below it no pair is a candidate, whatever else matches (twins: 王一 / 王二 are 0.5 alike)


@dataclass(frozen=True)
class Child:
    """What the rule compares of one student record."""

    student_id: str
    name: str
    birth_date: date | None
    county_path: str  # the district/county the student's school is in (`/620400/620402`)
    guardian_phones: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Candidate:
    """A likely duplicate of a record: the other record, the score (0..1) and the evidence that made it."""

    student_id: str
    score: float
    reasons: tuple[DuplicateReason, ...]


def name_similarity(a: str, b: str) -> float:
    """0..1: the better of the names' characters and their sound (pinyin without tones)."""
    a, b = "".join(a.split()), "".join(b.split())
    if not a or not b:
        return 0.0
    chars = fuzz.ratio(a, b)
    sound = fuzz.ratio(_sound(a), _sound(b))  # syllable by syllable: wang yi / wang er are half alike
    return round(max(chars, sound) / 100, 2)


@functools.lru_cache(maxsize=65_536)
def _sound(name: str) -> tuple[str, ...]:
    """A name's pinyin syllables without tones (kept: an import scores each new name against several others)."""
    return tuple(lazy_pinyin(name))


def score(a: Child, b: Child) -> Candidate | None:
    """`b` as a likely duplicate of `a`, or None when the two are not alike enough."""
    if a.student_id == b.student_id:
        return None
    name = name_similarity(a.name, b.name)
    if name < MIN_NAME:
        return None
    reasons = [DuplicateReason.SIMILAR_NAME if name < 1 else DuplicateReason.SAME_NAME]
    total = NAME * name
    if a.birth_date is not None and a.birth_date == b.birth_date:
        total += BIRTH_DATE
        reasons.append(DuplicateReason.SAME_BIRTH_DATE)
    if a.county_path == b.county_path:
        total += COUNTY
        reasons.append(DuplicateReason.SAME_COUNTY)
    if a.guardian_phones & b.guardian_phones:
        total += GUARDIAN_PHONE
        reasons.append(DuplicateReason.SHARED_GUARDIAN_PHONE)
    value = round(min(total, 1.0), 2)
    return Candidate(b.student_id, value, tuple(reasons)) if value >= THRESHOLD else None


def county_of(org_path: str) -> str:
    """The county (district) of an org path: `/620400/620402/s1/g1/c1` → `/620400/620402`."""
    return "/".join(org_path.split("/")[:3])


def merge_refusal(survivor: dict[str, Any] | None, duplicate: dict[str, Any] | None) -> tuple[str, str] | None:
    """Why a duplicate cannot be merged into a survivor (the field at fault and the reason), or None."""
    if survivor is None:
        return ("/student_id", "no such student")
    if duplicate is None:
        return ("/duplicate_id", "no such student")
    if survivor["student_id"] == duplicate["student_id"]:
        return ("/duplicate_id", "a record cannot be merged into itself")
    for pointer, row in (("/student_id", survivor), ("/duplicate_id", duplicate)):
        if row["merged_into"] is not None:
            return (pointer, f"already merged into {row['merged_into']}")
        if not row["active"]:
            return (pointer, "the student has left; only current records are merged")
    return None


def candidates(child: Child, others: Iterable[Child]) -> list[Candidate]:
    """The likely duplicates of `child` among `others`, best first."""
    found = [c for other in others if (c := score(child, other)) is not None]
    return sorted(found, key=lambda c: (-c.score, c.student_id))
