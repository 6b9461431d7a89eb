"""Import files as rows (pure): CSV and JSON parsing, row numbers, validation in dependency order."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from services.committees.domain.rows import REQUIRED_COLUMNS, Checker, RowError

Rows = list[tuple[int, dict[str, Any]]]


def header_fault(entity: str, text: str) -> str | None:
    """Why `text` cannot be the entity's CSV file, from its first line alone (None when it can be)."""
    try:
        header = [h.strip() for h in next(csv.reader(io.StringIO(text.lstrip("\ufeff"))), [])]
    except csv.Error as exc:
        return f"line 1 is not a CSV header: {exc}"
    missing = [c for c in REQUIRED_COLUMNS[entity] if c not in header]
    if missing:
        return f"the header (line 1) lacks the {entity} columns {', '.join(missing)}"
    return None


def parse_csv(entity: str, text: str) -> tuple[Rows, list[RowError], int]:
    """Rows numbered by their line in the file (the header is line 1); also the number of data rows."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    errors: list[RowError] = []
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        return [], [RowError(entity, 1, "*", f"malformed CSV: {exc}")], 0
    missing = [c for c in REQUIRED_COLUMNS[entity] if c not in header]
    if missing:  # a wrong file: one error per missing column instead of one per row, every row rejected
        n = sum(1 for _ in reader)
        return [], [RowError(entity, 1, c, "required column is missing from the header") for c in missing], n
    width = len(header)
    rows: Rows = []
    try:
        for cells in reader:
            if len(cells) > width:
                errors.append(RowError(entity, reader.line_num, "*", "row has more cells than the header"))
            elif cells:
                rows.append((reader.line_num, dict(zip(header, cells, strict=False))))
    except csv.Error as exc:
        errors.append(RowError(entity, reader.line_num, "*", f"malformed CSV: {exc}"))
    return rows, errors, len(rows) + len(errors)


def parse_json(entity: str, text: str) -> tuple[Rows, list[RowError], int]:
    """Rows numbered by their index in the JSON array (from 0)."""
    data = orjson.loads(text)
    rows: Rows = []
    errors: list[RowError] = []
    for i, raw in enumerate(data):
        if isinstance(raw, dict):
            rows.append((i, raw))
        else:
            errors.append(RowError(entity, i, "*", "must be an object"))
    return rows, errors, len(data)


def validate_one(entity: str, text: str, fmt: str, checker: Checker) -> tuple[list[dict[str, Any]], int]:
    """Clean rows of one entity (after those it refers to) and the number of rows received."""
    rows, errors, total = (parse_csv if fmt == "csv" else parse_json)(entity, text)
    checker.errors.extend(errors)
    clean: list[dict[str, Any]] = getattr(checker, entity)(rows)
    return clean, total
