"""Ids of aggregates: one scheme for every service (a random UUID, as text)."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """A fresh aggregate id: a UUID4 in its canonical text form."""
    return str(uuid.uuid4())
