"""Pure rules of the visits service (no I/O): assignment planning, visit checks, the checklist vocabulary."""
