"""What a consumer group makes of a record: its handled types parsed, other registered types ignored unread, and
anything whose header and body disagree read the general way (never ignored on the header's word alone)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from pydantic import BaseModel

from services.visits.settings import VisitsSettings
from shared.contracts import committees as c
from shared.events import new_envelope, registry, type_of
from shared.inbox import Batch, InboxConsumer, Poison
from shared.relay import TYPE_HEADER

AT = datetime(2026, 9, 1, 8, tzinfo=UTC)


async def _nothing(conn: Any, events: Any) -> None:
    return None


def merges_group() -> InboxConsumer:
    """A group handling one type of the student topic (as visits' and outreach's merges groups do)."""
    batch = Batch(frozenset({type_of(c.StudentMerged)}), _nothing)
    return InboxConsumer(VisitsSettings(), None, "test.merges", batch)  # no pool needed to parse


def record(value: bytes, header: str | None) -> ConsumerRecord:
    headers = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]
    headers += [(TYPE_HEADER, header.encode())] if header else []
    return ConsumerRecord("t", 0, 7, 0, 0, b"k", value, None, 1, len(value), headers)


def relayed(payload: BaseModel) -> bytes:
    env = new_envelope(registry.spec_for(payload), payload, correlation_id="corr", causation_id=None)
    return env.model_dump_json().encode()


REGISTERED = c.StudentRegistered(student_id="s1", class_id="c1", org_path="/p/c1", family_id="f1", occurred_at=AT)
MERGED = c.StudentMerged(student_id="s1", merged_into="s2", org_path="/p/c1", occurred_at=AT)


def test_a_handled_type_is_parsed_and_another_registered_type_ignored() -> None:
    group = merges_group()
    event = group._parse(record(relayed(MERGED), type_of(c.StudentMerged)))
    assert event is not None and event.payload == MERGED and event.offset == 7
    assert group._parse(record(relayed(REGISTERED), type_of(c.StudentRegistered))) is None


def test_a_header_that_is_not_the_envelopes_type_is_not_believed() -> None:
    group = merges_group()
    # The header names a type the group ignores, the envelope one it handles: applied, not skipped.
    event = group._parse(record(relayed(MERGED), type_of(c.StudentRegistered)))
    assert event is not None and event.payload == MERGED
    # Not JSON at all, whatever the header says: poison (dead-lettered), not silently ignored.
    with pytest.raises(Poison):
        group._parse(record(b"not json", type_of(c.StudentRegistered)))
    # No header (another producer): read the general way, ignored because its type is not handled.
    assert group._parse(record(relayed(REGISTERED), None)) is None
