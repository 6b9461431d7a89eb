"""Event handlers: visits keeps the kit's directory copy (shared.directory) of committees' events."""

from __future__ import annotations

from shared.directory import TOPICS, DirectoryCopy
from shared.inbox import Batch

GROUP = "visits.directory"
CONSUMED_TOPICS = TOPICS


def consumers() -> dict[str, Batch]:
    """The consumer groups: the directory copy, nothing read across topics (so nothing locked)."""
    return {GROUP: DirectoryCopy().subscription()}
