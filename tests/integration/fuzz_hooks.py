"""schemathesis hooks of the fuzz run (`SCHEMATHESIS_HOOKS=tests.integration.fuzz_hooks`).

A paging cursor is a value the server made (`next_cursor`): no schema can tell a random string that matches the
cursor's pattern from a real one, so the fuzzer does not invent them (strings that break the pattern are still
sent, and must be refused). Real cursors are tested in the services' paging tests.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

from shared.pages import CURSOR_PATTERN


@schemathesis.hook
def filter_query(ctx: Any, query: dict[str, Any] | None) -> bool:
    cursor = (query or {}).get("cursor")
    return not (isinstance(cursor, str) and re.fullmatch(CURSOR_PATTERN, cursor))
