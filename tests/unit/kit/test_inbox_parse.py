"""What a consumer group makes of a record: its handled types parsed, other registered types ignored unread, and
anything whose header and body disagree read the general way (never ignored on the header's word alone); what a
copying group (`Facts`) makes of one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from pydantic import BaseModel, ValidationError

from services.visits.settings import VisitsSettings
from shared.contracts import committees as c
from shared.contracts.common import StaffRole
from shared.directory import DirectoryCopy
from shared.events import Fact, lean_envelope, new_envelope, registry, type_of, typed_envelope
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


def directory_copy() -> InboxConsumer:
    """A copying group (the kit's directory copy, as visits and outreach subscribe it)."""
    return InboxConsumer(VisitsSettings(), None, "test.directory", DirectoryCopy().subscription())


STAFF = c.StaffRegistered(staff_id="t1", org_path="/p", roles=[StaffRole.CLASS_TEACHER], occurred_at=AT)


def test_a_copy_reads_its_facts_as_the_contract_validates_them_with_or_without_the_header() -> None:
    group = directory_copy()
    for header in (type_of(c.StudentRegistered), None):  # the relay's records, and another producer's
        read = group._read_fact(record(relayed(REGISTERED), header))
        assert read is not None
        fact, correlation, traceparent = read
        assert fact == Fact(type_of(c.StudentRegistered), dict(REGISTERED)) and correlation == "corr"
        assert traceparent.startswith("00-0af7651916cd43dd8448eb211c80319c-")
    # A field the event leaves out gets the contract's default, as the model would give it.
    value = relayed(STAFF).replace(b',"class_ids":[]', b"")
    read = group._read_fact(record(value, type_of(c.StaffRegistered)))
    assert read is not None and read[0].data == dict(STAFF) and read[0].data["class_ids"] == []
    # A registered type the copy does not handle is ignored; one matching no contract field is poison, named.
    formed = c.InstructorTeamFormed(team_id="tm", org_path="/p", occurred_at=AT)
    assert group._read_fact(record(relayed(formed), type_of(c.InstructorTeamFormed))) is None
    bad = relayed(STAFF).replace(b'"class_teacher"', b'"janitor"')
    for header in (type_of(c.StaffRegistered), None):
        with pytest.raises(Poison, match=r"(?s)committees.staff.registered.v1.*roles\.0"):
            group._read_fact(record(bad, header))
    with pytest.raises(Poison):
        group._read_fact(record(relayed(STAFF).replace(b'"occurred_at":"', b'"occurred_at":"x'), None))


def test_the_lean_envelope_checks_what_the_typed_envelope_checks() -> None:
    """Both shapes accept and refuse the same envelopes, and give the same fields."""
    lean, typed = lean_envelope(c.StaffRegistered), typed_envelope(c.StaffRegistered)
    good = relayed(STAFF)
    assert lean.validate_json(good)["data"] == dict(typed.model_validate_json(good).data)
    for broken in (
        good.replace(b'"specversion":"1.0"', b'"specversion":"2.0"'),
        good.replace(b'"source":"/services/committees",', b""),
        good.replace(b'"staff_id":"t1"', b'"staff_id":7'),
        good.replace(b'"roles":["class_teacher"]', b'"roles":"class_teacher"'),
        good.replace(b'"head_class_id":null', b'"head_class_id":[]'),
    ):
        with pytest.raises(ValidationError):
            typed.model_validate_json(broken)
        with pytest.raises(ValidationError):
            lean.validate_json(broken)
