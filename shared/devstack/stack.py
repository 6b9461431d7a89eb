"""The dev stack as a whole: which components exist, and up/down/status over all of them."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from shared.devstack.component import Component, ComponentStatus, External, wait_until
from shared.devstack.kafka import Kafka, probe_kafka
from shared.devstack.postgres import Postgres, probe_postgres
from shared.devstack.services import ServiceProcess, service_components

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PG_PORT = 55432
DEFAULT_KAFKA_PORT = 59092
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class StackInfo:
    """Addresses of the running infrastructure."""

    database_url: str
    kafka_bootstrap: str

    def env(self) -> dict[str, str]:
        """The environment variables services read these addresses from."""
        return {"DATABASE_URL": self.database_url, "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap}


def state_dir() -> Path:
    """Where data, pid files and logs live: $DEVSTACK_DIR or <repo>/.devstack."""
    return Path(os.environ.get("DEVSTACK_DIR") or REPO_ROOT / ".devstack").resolve()


def components() -> list[Component]:
    """The stack's components in start order; env-provided addresses replace local ones."""
    state = state_dir()
    db_url = os.environ.get("DATABASE_URL")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    postgres: Component = (
        External("postgres", "DATABASE_URL", db_url, lambda: probe_postgres(db_url))
        if db_url
        else Postgres(state, int(os.environ.get("DEVSTACK_PG_PORT") or DEFAULT_PG_PORT))
    )
    kafka: Component = (
        External("kafka", "KAFKA_BOOTSTRAP_SERVERS", bootstrap, lambda: probe_kafka(bootstrap))
        if bootstrap
        else Kafka(state, int(os.environ.get("DEVSTACK_KAFKA_PORT") or DEFAULT_KAFKA_PORT))
    )
    return [postgres, kafka]


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Serialise up/down across processes (parallel test runs share one stack)."""
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "devstack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _info(parts: list[Component]) -> StackInfo:
    """StackInfo from the components' addresses."""
    by_var = {c.env_var: c.address for c in parts}
    return StackInfo(by_var["DATABASE_URL"], by_var["KAFKA_BOOTSTRAP_SERVERS"])


def ensure_up() -> StackInfo:
    """Start whatever is not running yet and return the addresses."""
    parts = components()
    with _locked():
        missing = [c for c in parts if not c.is_alive()]
        if missing:
            # Components are independent; starting them side by side halves the cold start.
            with ThreadPoolExecutor(len(missing)) as pool:
                for future in [pool.submit(c.ensure) for c in missing]:
                    future.result()
        # Also covers external services and a process that runs but has stopped answering.
        for c in parts:
            wait_until(c.answers, READY_TIMEOUT, c.name, c.is_alive)
    return _info(parts)


def stop() -> None:
    """Stop the services and the components devstack started; external ones are left alone."""
    services_down()
    with _locked():
        for component in reversed(components()):
            component.stop()


def status() -> list[ComponentStatus]:
    """Current state of each component."""
    return [c.status() for c in components()]


def services(info: StackInfo | None = None) -> list[ServiceProcess]:
    """The four service processes, configured for this stack."""
    info = info or _info(components())
    return service_components(state_dir(), info.env())


def services_up() -> list[ServiceProcess]:
    """Start the infrastructure, then every service that is not running; returns them once they are ready."""
    info = ensure_up()
    procs = services(info)
    with _locked():
        for proc in procs:
            proc.ensure()
    return procs


def services_down() -> None:
    """Stop the service processes devstack started."""
    with _locked():
        for proc in services():
            proc.stop()
