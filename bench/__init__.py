"""Benchmarks, run by hand (see the docstring of each)."""
