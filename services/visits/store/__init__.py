"""All SQL of the visits service (asyncpg; set-based writes so a batch costs a handful of round trips)."""

from services.visits.store import assignments, campaigns, directory, visits

__all__ = ["assignments", "campaigns", "directory", "visits"]
