"""Real local Kafka and PostgreSQL for development, demos and tests, without Docker."""

from shared.devstack.component import ComponentStatus, DevstackError, free_port_block
from shared.devstack.kafka import KafkaCluster, KafkaNode
from shared.devstack.services import REPLICA_PORT_STEP, ServiceProcess
from shared.devstack.stack import (
    RelayHolder,
    Stack,
    StackInfo,
    Topology,
    department_access,
    ensure_up,
    services,
    services_down,
    services_up,
    state_dir,
    status,
    stop,
)

__all__ = [
    "REPLICA_PORT_STEP",
    "ComponentStatus",
    "DevstackError",
    "KafkaCluster",
    "KafkaNode",
    "RelayHolder",
    "ServiceProcess",
    "Stack",
    "StackInfo",
    "Topology",
    "department_access",
    "ensure_up",
    "free_port_block",
    "services",
    "services_down",
    "services_up",
    "state_dir",
    "status",
    "stop",
]
