"""schemathesis hooks of the fuzz run (`SCHEMATHESIS_HOOKS=tests.integration.fuzz_hooks`).

Two values are the server's or the caller's own, and no schema can tell a fresh one from a used or invented one, so
the fuzzer's schema-valid choices are made real just before each request (in every phase: coverage, fuzzing,
stateful); values that break the schema are sent as generated, and must be refused:

* a paging cursor is a value the server made (`next_cursor`): a pattern-valid string it never made is dropped (the
  first page is asked for instead). Real cursors are tested in the services' paging tests.
* an `Idempotency-Key` is a caller's unique string per intended change: the fuzzer reuses the same few strings
  ("0", "00") across operations and bodies, which the kit rightly answers with a 422 ("reused with a different
  request"); a schema-valid key is replaced by a fresh UUID. Replays are tested in the idempotency tests.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

import orjson
import schemathesis

from shared.idempotency import MAX_KEY_LENGTH
from shared.openapi import PARAMETER_TEXT
from shared.pages import CURSOR_MAX_LENGTH, CURSOR_PATTERN

KEY_HEADER = "Idempotency-Key"


def _made_by_server(cursor: Any) -> bool:
    """Whether a cursor is in the kit's encoding (base64url of a JSON array), as the server's own are."""
    if not isinstance(cursor, str):
        return False
    try:
        return isinstance(orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))), list)
    except (binascii.Error, ValueError):
        return False


def _schema_valid_cursor(cursor: Any) -> bool:
    return isinstance(cursor, str) and 1 <= len(cursor) <= CURSOR_MAX_LENGTH and bool(re.match(CURSOR_PATTERN, cursor))


def _schema_valid_key(key: Any) -> bool:
    return isinstance(key, str) and 1 <= len(key) <= MAX_KEY_LENGTH and bool(re.match(PARAMETER_TEXT, key))


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    cursor = (case.query or {}).get("cursor")
    if _schema_valid_cursor(cursor) and not _made_by_server(cursor):
        del case.query["cursor"]
    if case.headers is not None and _schema_valid_key(case.headers.get(KEY_HEADER)):
        case.headers[KEY_HEADER] = str(uuid.uuid4())
