"""Use cases: each owns one transaction and the events it writes (routers and handlers call them)."""
