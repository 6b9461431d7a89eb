"""Exports of the API's tables as CSV or XLSX (same numbers as the JSON endpoints)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook

from services.reporting.domain.figures import flatten
from services.reporting.usecases import views
from shared.db import Conn


async def table(conn: Conn, name: str, node: str, campaign_id: str) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of one exportable table."""
    if name == "series":
        days = (await views.day_series(conn, node, campaign_id))["days"]
        header = ["day", "visits", "findings", "cases_opened", "cases_closed"]
        return header, [[d[h] for h in header] for d in days]
    if name == "children":
        data = await views.children(conn, node, campaign_id)
        docs = data["children"]
        keys = [k for k, _ in flatten(data["self"]["figures"])]
        return ["org_path", "name", "level", *keys], [
            [d["org_path"], d["name"], d["level"], *[v for _, v in flatten(d["figures"])]] for d in docs
        ]
    doc = await views.summary(conn, node, campaign_id)
    f = doc["figures"]
    if name == "summary":
        return ["indicator", "value"], [[k, v] for k, v in flatten(f)]
    if name == "findings":
        sev = ["low", "medium", "high", "urgent"]
        rows = [[c, *[s[x] for x in sev], sum(s.values())] for c, s in f["findings"]["by_category_severity"].items()]
        return ["category", *sev, "total"], rows
    if name == "checklist":
        return ["item", "yes", "answered", "compliance"], [
            [i, v["yes"], v["answered"], v["compliance"]] for i, v in f["checklist"].items()
        ]
    if name == "referrals":
        states = list(next(iter(f["referrals"].values())).keys())
        return ["department", *states], [[d, *[s[x] for x in states]] for d, s in f["referrals"].items()]
    raise KeyError(name)


# A cell starting with one of these is a formula to Excel, LibreOffice and Sheets (OWASP "CSV injection"); names of
# org units and campaigns come from users, so such text is exported with a leading apostrophe and stays text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def cell(value: Any) -> Any:
    """A value safe for a spreadsheet cell: text that could start a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def content_disposition(filename: str) -> str:
    """`attachment` with a quoted ASCII filename and the exact one in RFC 5987 form (RFC 6266)."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def to_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 CSV with a BOM so that spreadsheet programs read the Chinese labels right."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([cell(h) for h in header])
    w.writerows([cell(v) for v in r] for r in rows)
    return ("\ufeff" + buf.getvalue()).encode()


def to_xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
    """A one-sheet workbook (text cells never become formulas)."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]
    ws.append([cell(h) for h in header])
    for r in rows:
        ws.append([cell(v) for v in r])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
