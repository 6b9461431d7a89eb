"""schemathesis hooks of the fuzz run (`SCHEMATHESIS_HOOKS=tests.integration.fuzz_hooks`).

Some of what a request must be cannot be written in JSON Schema; the documents say it in words, and the fuzzer's
schema-valid choices are made real just before each request (`before_call`, in every phase: coverage, fuzzing,
stateful; schemathesis re-checks the request's validity after the hook). Values that break the schema are sent as
generated, and must be refused:

* a paging cursor is a value the server made (`next_cursor`, collected from the answers by `after_call`): a
  pattern-valid string it never made is dropped (the first page is asked for instead). Real cursors are tested in
  the services' paging tests.
* an `If-Match` names a version the server answered (an `ETag`, collected by `after_call`): an invented one is a
  412, so a schema-valid request sends `*` (whatever the version) instead. Stale tags are tested in the services'
  concurrency tests.
* an `Idempotency-Key` is a caller's unique string per intended change: the fuzzer reuses the same few strings
  ("0", "00") across operations and bodies, which the kit rightly answers with a 422 ("reused with a different
  request"); a schema-valid key is replaced by a fresh UUID. Replays are tested in the idempotency tests.
* rules over several fields or over the clock, stated in the field's description, are met with the service's own
  rule function (RULES, by operationId): a campaign's last day is not before its first; a contact is not in the
  future and its next review comes after it; an uploaded CSV file's header names the entity's required columns;
  a school (and only a school) has a school type; only a class teacher heads a class; a child's birth date is not
  after today; a resident ID number's date is a real date and its check character fits (guidance topics need no
  rule: they are the contract's `GuidanceTopic` enum in the schema). Their 422s are tested in the services' tests.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import schemathesis
from pydantic import AwareDatetime, TypeAdapter, ValidationError

from services.committees.domain.files import header_fault
from services.committees.domain.rows import (
    NATIONAL_ID_RE,
    REQUIRED_COLUMNS,
    birth_date_fault,
    head_class_fault,
    national_id_check,
    national_id_ok,
    school_type_fault,
)
from services.outreach.domain import contact_fault
from services.visits.domain.planning import period_ok
from shared.idempotency import MAX_KEY_LENGTH
from shared.openapi import PARAMETER_TEXT
from shared.pages import CURSOR_MAX_LENGTH, CURSOR_PATTERN

KEY_HEADER = "Idempotency-Key"
IF_MATCH = "If-Match"
REVIEW = "next_review_at"
# The services' clock in the fuzz test stands still at this instant (test_fuzz.CLOCK).
NOW = datetime.fromisoformat(os.environ.get("FUZZ_NOW") or datetime.now().astimezone().isoformat())
CURSORS: set[str] = set()  # every next_cursor a server answered
ETAGS: set[str] = set()  # every ETag a server answered


def _schema_valid_cursor(cursor: Any) -> bool:
    return isinstance(cursor, str) and 1 <= len(cursor) <= CURSOR_MAX_LENGTH and bool(re.match(CURSOR_PATTERN, cursor))


def _schema_valid_key(key: Any) -> bool:
    return isinstance(key, str) and 1 <= len(key) <= MAX_KEY_LENGTH and bool(re.match(PARAMETER_TEXT, key))


def _value(kind: type[Any], raw: Any) -> Any:
    """`raw` parsed as the server parses it; None when it does not parse (the server then refuses it)."""
    try:
        return TypeAdapter(kind).validate_python(raw)
    except ValidationError:
        return None


def _campaign_period(case: Any) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    starts_on, ends_on = _value(date, body.get("starts_on")), _value(date, body.get("ends_on"))
    if starts_on and ends_on and not period_ok(starts_on, ends_on):
        body["starts_on"], body["ends_on"] = body["ends_on"], body["starts_on"]


def _contact_times(case: Any) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    contacted_at, review = _value(AwareDatetime, body.get("contacted_at")), _value(AwareDatetime, body.get(REVIEW))
    if contacted_at is None:
        return
    fault = contact_fault(contacted_at, review, NOW)
    if fault and fault[0] == "/contacted_at":
        body["contacted_at"], contacted_at = NOW.isoformat(), NOW
        fault = contact_fault(contacted_at, review, NOW)
    if fault and fault[0] == f"/{REVIEW}":
        body[REVIEW] = (contacted_at + timedelta(days=1)).isoformat()


def _csv_header(case: Any) -> None:
    entity = (case.path_parameters or {}).get("entity")
    if isinstance(case.body, str) and entity in REQUIRED_COLUMNS and header_fault(entity, case.body):
        case.body = ",".join(REQUIRED_COLUMNS[entity]) + "\n" + case.body


def _school_type(case: Any) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("level"), str):
        fault = school_type_fault(body["level"], body.get("school_type"))
        if fault:
            body["school_type"] = "primary" if body["level"] == "school" else None


def _head_class(case: Any) -> None:
    body = case.body
    if isinstance(body, dict) and head_class_fault(body.get("head_class_id"), body.get("roles") or []):
        body["roles"] = [*(body.get("roles") or []), "class_teacher"]


BORN = "2015-06-01"  # a birth date any day of the run accepts


def _student(case: Any) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    born = _value(date, body.get("birth_date"))
    if born is not None and birth_date_fault(born, NOW.date()):
        body["birth_date"] = BORN
    nid = body.get("national_id")
    if isinstance(nid, str) and NATIONAL_ID_RE.match(nid) and not national_id_ok(nid):
        first17 = nid[:6] + BORN.replace("-", "") + nid[14:17]
        body["national_id"] = first17 + national_id_check(first17)


RULES: dict[str, Callable[[Any], None]] = {  # operationId → what its rule asks of the request
    "create_campaign": _campaign_period,
    "log_contact": _contact_times,
    "upload_csv_file": _csv_header,
    "create_org_unit": _school_type,
    "create_staff": _head_class,
    "update_staff": _head_class,
    "create_student": _student,
    "update_student": _student,
}


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    cursor = (case.query or {}).get("cursor")
    if _schema_valid_cursor(cursor) and cursor not in CURSORS:
        del case.query["cursor"]
    if case.headers is not None and _schema_valid_key(case.headers.get(KEY_HEADER)):
        case.headers[KEY_HEADER] = str(uuid.uuid4())
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and case.headers is not None and case.headers.get(IF_MATCH, "*") not in ETAGS | {"*"}:
        case.headers[IF_MATCH] = "*"  # also when schemathesis filled a "positive" case's header with "0"
    rule = RULES.get(case.operation.definition.raw.get("operationId", ""))
    if rule is not None and positive:
        rule(case)


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    ETAGS.update(response.headers.get("etag", []))
    if "json" not in "".join(response.headers.get("content-type", [])):
        return
    try:
        body = response.json()
    except ValueError:
        return
    if isinstance(body, dict) and isinstance(body.get("next_cursor"), str):
        CURSORS.add(body["next_cursor"])
