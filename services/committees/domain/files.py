"""Import files as rows (pure): CSV and JSON parsing, row numbers, validation in dependency order."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
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
    return _parsed(_csv_rows(entity, text))


def parse_json(entity: str, text: str) -> tuple[Rows, list[RowError], int]:
    """Rows numbered by their index in the JSON array (from 0)."""
    return _parsed(_json_rows(entity, text))


# A row as read: its number, its fields (None when rejected before validation: a malformed line), the errors found
# reading it, and whether it counts as a row received (1; 0 for the header).
Read = tuple[int, dict[str, Any] | None, list[RowError], int]


def _parsed(read: Iterator[Read]) -> tuple[Rows, list[RowError], int]:
    rows: Rows = []
    errors: list[RowError] = []
    total = 0
    for n, row, errs, counted in read:
        if row is not None:
            rows.append((n, row))
        errors += errs
        total += counted
    return rows, errors, total


def _csv_rows(entity: str, text: str) -> Iterator[Read]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        yield 1, None, [RowError(entity, 1, "*", f"malformed CSV: {exc}")], 0
        return
    missing = [c for c in REQUIRED_COLUMNS[entity] if c not in header]
    if missing:  # a wrong file: one error per missing column instead of one per row, every row rejected
        yield 1, None, [RowError(entity, 1, c, "required column is missing from the header") for c in missing], 0
        for _ in reader:
            yield reader.line_num, None, [], 1
        return
    width = len(header)
    try:
        for cells in reader:
            if len(cells) > width:
                yield (
                    reader.line_num,
                    None,
                    [RowError(entity, reader.line_num, "*", "row has more cells than the header")],
                    1,
                )
            elif cells:
                yield reader.line_num, dict(zip(header, cells, strict=False)), [], 1
    except csv.Error as exc:
        yield reader.line_num, None, [RowError(entity, reader.line_num, "*", f"malformed CSV: {exc}")], 1


def _json_rows(entity: str, text: str) -> Iterator[Read]:
    for i, raw in enumerate(orjson.loads(text)):
        if isinstance(raw, dict):
            yield i, raw, [], 1
        else:
            yield i, None, [RowError(entity, i, "*", "must be an object")], 1


# Rows validated at a time: the rows of a file are read, checked and handed on a chunk at a time, so what an import
# holds of a file's rows does not grow with the file (org units: all at once, a parent may follow its children).
CHUNK = 5_000


def validate_chunks(entity: str, text: str, fmt: str, checker: Checker) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """The clean rows of one entity's file (after those it refers to), a chunk at a time, each with the number of
    rows received in it; the row errors go to `checker.errors`."""
    read = (_csv_rows if fmt == "csv" else _json_rows)(entity, text)
    size = None if entity == "org_units" else CHUNK
    while chunk := list(itertools.islice(read, size)):
        rows, errors, received = _parsed(iter(chunk))
        checker.errors += errors
        yield getattr(checker, entity)(rows), received


def validate_one(entity: str, text: str, fmt: str, checker: Checker) -> tuple[list[dict[str, Any]], int]:
    """Clean rows of one entity (after those it refers to) and the number of rows received."""
    clean: list[dict[str, Any]] = []
    total = 0
    for rows, n in validate_chunks(entity, text, fmt, checker):
        clean += rows
        total += n
    return clean, total
