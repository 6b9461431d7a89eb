"""Real local Kafka and PostgreSQL for development, demos and tests, without Docker."""

from shared.devstack.component import ComponentStatus, DevstackError
from shared.devstack.services import ServiceProcess
from shared.devstack.stack import StackInfo, ensure_up, services, services_down, services_up, state_dir, status, stop

__all__ = [
    "ComponentStatus",
    "DevstackError",
    "ServiceProcess",
    "StackInfo",
    "ensure_up",
    "services",
    "services_down",
    "services_up",
    "state_dir",
    "status",
    "stop",
]
