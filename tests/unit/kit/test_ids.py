"""Aggregate ids: one scheme (a UUID4 as text), one at a time or thousands at once."""

from __future__ import annotations

import uuid

from shared.ids import new_id, new_ids


def test_bulk_ids_are_canonical_random_uuids_like_single_ones():
    ids = new_ids(20_000)
    assert len(ids) == len(set(ids)) == 20_000
    for text in [*ids, new_id()]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
    # every variant digit a UUID4 may have turns up (the bits set, the rest random)
    assert {text[19] for text in ids} == set("89ab")
    assert new_ids(0) == []
