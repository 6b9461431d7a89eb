"""SQL of the committees service."""
