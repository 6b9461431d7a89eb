"""Shared fixtures: the real stack (devstack), per-test schemas and topics."""

import os

# Before the kit is imported: every payload a service builds itself is checked against its contract when written
# (shared/outbox.py), in this process and in the services the tests start.
os.environ.setdefault("HSS_CHECK_BUILT_EVENTS", "1")

pytest_plugins = ["shared.testing.fixtures", "tests.e2e.city", "tests.e2e.gateway"]
