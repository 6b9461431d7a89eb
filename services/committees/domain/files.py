"""Import files as rows (pure): CSV and JSON parsing, row numbers, validation in dependency order."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import Any, TextIO

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
    reading = Reading()
    rows = list(_csv_rows(entity, text, reading))
    return rows, reading.errors, reading.received


def parse_json(entity: str, text: str) -> tuple[Rows, list[RowError], int]:
    """Rows numbered by their index in the JSON array (from 0)."""
    reading = Reading()
    rows = list(_json_rows(entity, text, reading))
    return rows, reading.errors, reading.received


class Reading:
    """What reading a file found besides its rows: the rows received so far and the errors of rows rejected before
    validation (a malformed line, a wrong header)."""

    def __init__(self) -> None:
        self.received = 0
        self.errors: list[RowError] = []


def _lines(source: str | TextIO) -> TextIO:
    """A file's text as a stream (a stream is read as it is: opened with `newline=""` and encoding utf-8-sig)."""
    return io.StringIO(source.lstrip("\ufeff")) if isinstance(source, str) else source


def _csv_rows(entity: str, source: str | TextIO, reading: Reading) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(_lines(source))
    try:
        header = [h.strip() for h in next(reader, [])]
    except csv.Error as exc:
        reading.errors.append(RowError(entity, 1, "*", f"malformed CSV: {exc}"))
        return
    missing = [c for c in REQUIRED_COLUMNS[entity] if c not in header]
    if missing:  # a wrong file: one error per missing column instead of one per row, every row rejected
        reading.errors += [RowError(entity, 1, c, "required column is missing from the header") for c in missing]
        reading.received = sum(1 for _ in reader)
        return
    width = len(header)
    try:
        for cells in reader:
            if len(cells) > width:
                reading.received += 1
                reading.errors.append(RowError(entity, reader.line_num, "*", "row has more cells than the header"))
            elif cells:
                reading.received += 1
                yield reader.line_num, dict(zip(header, cells, strict=False))
    except csv.Error as exc:
        reading.received += 1
        reading.errors.append(RowError(entity, reader.line_num, "*", f"malformed CSV: {exc}"))


def _json_rows(entity: str, source: str | TextIO, reading: Reading) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, raw in enumerate(orjson.loads(source if isinstance(source, str) else source.read())):  # JSON: whole
        reading.received += 1
        if isinstance(raw, dict):
            yield i, raw
        else:
            reading.errors.append(RowError(entity, i, "*", "must be an object"))


# Rows validated at a time: the rows of a file are read, checked and handed on a chunk at a time, so what an import
# holds of a file's rows does not grow with the file (org units: all at once, a parent may follow its children).
CHUNK = 5_000


def validate_chunks(
    entity: str, source: str | TextIO, fmt: str, checker: Checker
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """The clean rows of one entity's file (its text, or a stream of it: a CSV file is then read a chunk at a time),
    after those it refers to, a chunk at a time, each with the number of rows received in it; the row errors go to
    `checker.errors`."""
    reading = Reading()
    rows = (_csv_rows if fmt == "csv" else _json_rows)(entity, source, reading)
    size = None if entity == "org_units" else CHUNK
    while True:
        before = reading.received
        chunk = list(itertools.islice(rows, size))
        checker.errors += reading.errors
        reading.errors.clear()
        if reading.received == before:
            return
        yield getattr(checker, entity)(chunk), reading.received - before


def validate_one(entity: str, text: str, fmt: str, checker: Checker) -> tuple[list[dict[str, Any]], int]:
    """Clean rows of one entity (after those it refers to) and the number of rows received."""
    clean: list[dict[str, Any]] = []
    total = 0
    for rows, n in validate_chunks(entity, text, fmt, checker):
        clean += rows
        total += n
    return clean, total
