"""Ids: one scheme (a UUIDv7 as text), one at a time or thousands at once, later ones sorting after earlier ones."""

from __future__ import annotations

import time
import uuid

from shared.ids import new_id, new_ids


def test_bulk_ids_are_canonical_uuid7s_like_single_ones():
    before = time.time_ns() // 1_000_000
    ids = [*new_ids(20_000), new_id()]
    after = time.time_ns() // 1_000_000
    assert len(ids) == len(set(ids)) == 20_001
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)
        assert before <= parsed.int >> 80 <= after + 1  # the first 48 bits: when it was made, in ms
    # every variant digit turns up (its two top bits set, the rest random), and the random part is random
    assert {text[19] for text in ids} == set("89ab")
    assert len({text[-12:] for text in ids}) == 20_001
    assert new_ids(0) == []


def test_an_id_made_in_a_later_millisecond_sorts_after_every_earlier_one():
    first = new_ids(1_000)
    time.sleep(0.002)
    later = new_id()
    assert max(first) < later
    assert max(map(uuid.UUID, first)) < uuid.UUID(later)  # as PostgreSQL's uuid type compares them, byte by byte
