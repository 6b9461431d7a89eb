"""Use cases: each owns one transaction and the events it writes (routers and handlers call them)."""

import uuid


def new_id() -> str:
    """A new record id (uuid4 text)."""
    return str(uuid.uuid4())
