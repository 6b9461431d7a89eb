"""All SQL of the visits service (asyncpg; set-based writes so a batch costs a handful of round trips)."""

from services.visits.store import assignments, campaigns, directory, merges, visits

__all__ = ["assignments", "campaigns", "directory", "merges", "visits"]
