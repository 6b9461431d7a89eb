"""HTTP routes of the committees service."""
