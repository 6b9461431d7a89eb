"""Ids of aggregates: one scheme for every service (a random UUID, as text)."""

from __future__ import annotations

import os
import uuid

# The UUID variant nibble (RFC 4122: binary 10xx) for each random hex digit in its place.
_VARIANT = {h: "89ab"[int(h, 16) & 3] for h in "0123456789abcdef"}


def new_id() -> str:
    """A fresh aggregate id: a UUID4 in its canonical text form."""
    return str(uuid.uuid4())


def new_ids(n: int) -> list[str]:
    """`n` fresh ids, each what `new_id` makes (a UUID4 as text), from one read of the system's random source: for
    set-based writes of thousands of rows, where `uuid.uuid4()` per row costs more than the rest of the row."""
    digits = os.urandom(16 * n).hex()
    return [
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"
        for h in (digits[i : i + 32] for i in range(0, 32 * n, 32))
    ]
