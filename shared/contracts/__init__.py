"""Event contracts of every service, registered in `shared.events.registry` on import."""

from shared.contracts import committees, outreach, visits  # noqa: F401
