"""Pure rules of the committees service."""
