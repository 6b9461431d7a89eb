"""Ids of aggregates and events: one scheme for every service (a UUIDv7, as text).

A UUIDv7 (RFC 9562) starts with the milliseconds since the epoch, so ids made later sort later: a new row's key lands
at the right-hand end of its B-tree index (the outbox's and inboxes' event ids, every aggregate's primary key)
instead of on a random page. Random keys spread each batch's inserts over the whole index, and after every
checkpoint the first change to each of those pages writes a full-page image to the WAL. The remaining 74 bits are
random, so ids stay unguessable; what an id tells is when it was made, which every record and event says anyway."""

from __future__ import annotations

import os
import time

# The UUID variant nibble (RFC 9562: binary 10xx) for each random hex digit in its place.
_VARIANT = {h: "89ab"[int(h, 16) & 3] for h in "0123456789abcdef"}


def new_id() -> str:
    """A fresh id: a UUIDv7 in its canonical text form."""
    return new_ids(1)[0]


def new_ids(n: int) -> list[str]:
    """`n` fresh ids, each what `new_id` makes, from one read of the clock and of the system's random source: for
    set-based writes of thousands of rows, where making a `uuid.UUID` per row costs more than the rest of the row.
    They share the millisecond, so they sort among themselves at random but after every id made before."""
    ms = f"{time.time_ns() // 1_000_000:012x}"
    head = f"{ms[:8]}-{ms[8:]}-7"
    digits = os.urandom(10 * n).hex()  # 20 random hex digits per id: 3 + 1 (variant) + 3 + 12, and one unused
    return [
        f"{head}{h[:3]}-{_VARIANT[h[3]]}{h[4:7]}-{h[7:19]}" for h in (digits[i : i + 20] for i in range(0, 20 * n, 20))
    ]
