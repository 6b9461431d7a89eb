"""Exports: text that a spreadsheet would run as a formula stays text; the download name is quoted."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import unquote

from openpyxl import load_workbook

from services.reporting.usecases import exports

EVIL = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"]


def test_csv_cells_that_would_be_formulas_are_prefixed():
    body = exports.to_csv(["name", "value"], [[e, -3] for e in EVIL] + [["普通学校", 1.5], [None, 0]])
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1 : len(EVIL) + 1]] == ["'" + e for e in EVIL]
    assert [r[1] for r in rows[1 : len(EVIL) + 1]] == ["-3"] * len(EVIL)  # numbers stay numbers
    assert rows[-2] == ["普通学校", "1.5"] and rows[-1] == ["", "0"]


def test_xlsx_text_never_becomes_a_formula():
    book = load_workbook(io.BytesIO(exports.to_xlsx("children", ["name", "n"], [[e, 1] for e in EVIL])))
    sheet = book.active
    assert sheet is not None
    cells = [sheet.cell(row=i + 2, column=1) for i in range(len(EVIL))]
    assert all(c.data_type == "s" and str(c.value).startswith("'") for c in cells)
    assert [c.value for c in cells[:5]] == ["'" + e for e in EVIL[:5]]


def test_content_disposition_is_quoted_whatever_the_name():
    for name in ['children_620400_c"; evil=1.csv', "summary_白银_camp.xlsx", "plain.csv"]:
        found = re.fullmatch(
            r"attachment; filename=\"([A-Za-z0-9._-]+)\"; filename\*=UTF-8''([A-Za-z0-9%._-]+)",
            (exports.content_disposition(name)),
        )
        assert found, exports.content_disposition(name)
        assert unquote(found[2]) == name  # the RFC 5987 form carries the exact name
