"""Real local Kafka and PostgreSQL for development, demos and tests, without Docker."""

from shared.devstack.component import ComponentStatus, DevstackError
from shared.devstack.stack import StackInfo, ensure_up, state_dir, status, stop

__all__ = ["ComponentStatus", "DevstackError", "StackInfo", "ensure_up", "state_dir", "status", "stop"]
