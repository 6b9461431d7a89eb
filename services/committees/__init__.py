"""Committees: the org directory and the home–school cooperation structure."""
