"""Shared fixtures: the real stack (devstack), per-test schemas and topics."""

pytest_plugins = ["shared.testing.fixtures", "tests.e2e.city", "tests.e2e.gateway"]
