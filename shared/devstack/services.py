"""The four services as local processes: started, probed and stopped like the infrastructure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shared.db import service_database_url
from shared.devstack.component import (
    DevstackError,
    LocalProcess,
    http_get,
    require_free,
    start_and_wait,
    tail,
)
from shared.devstack.postgres import ensure_service_databases, ensure_service_roles, service_url

SERVICES = {"committees": 8101, "visits": 8102, "outreach": 8103, "reporting": 8104}
# Replica k of a service listens on <its port> + REPLICA_PORT_STEP * (k - 1): visits#2 on 8112, visits#3 on 8122.
REPLICA_PORT_STEP = 10
REPO_ROOT = Path(__file__).resolve().parents[2]


class ServiceProcess(LocalProcess):
    """`python -m services.<name>` with its log in <state>/logs/<name>[-<replica>].log and a pid file."""

    stop_seconds = 20  # a service drains its consumers and relays before it exits

    def __init__(self, state_dir: Path, name: str, port: int, env: dict[str, str], replica: int = 1) -> None:
        self.name = name
        self.replica = replica
        self.label = f"{name}#{replica}"
        self.env_var = f"{name.upper()}_URL"
        self.port = port
        self.env = env
        suffix = "" if replica == 1 else f"-{replica}"
        self.pid_file = state_dir / "services" / f"{name}{suffix}.pid"
        self.log = state_dir / "logs" / f"{name}{suffix}.log"
        self.migrated = False  # like a pod's init container: once, not again when the process is restarted

    @property
    def marker(self) -> str:
        return f"services.{self.name}"

    def start(self) -> None:
        require_free(self.port, self.name, f"set {self.name.upper()}_HTTP_PORT")
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, f"{self.name.upper()}_HTTP_PORT": str(self.port)}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", f"services.{self.name}"]
        if cluster := env.get("DATABASE_URL"):
            # As in production, each service has its own database in the cluster (no service reads another's tables,
            # and a long snapshot in one does not hold back the others' cleanup): DATABASE_URL names the cluster.
            env["DATABASE_URL"] = service_database_url(cluster, self.name)
            if not self.migrated:  # also on a PostgreSQL that devstack did not start
                ensure_service_roles(cluster)
                ensure_service_databases(cluster, [self.name])
        if "HSS_DB_MIGRATE_AT_START" not in env and env.get("DATABASE_URL"):
            # As in production: the owner migrates (an init container), the service logs in without DDL rights.
            if not self.migrated:
                self._migrate(argv, env)
                self.migrated = True
            env |= {"DATABASE_URL": service_url(env["DATABASE_URL"]), "HSS_DB_MIGRATE_AT_START": "false"}
        start_and_wait(argv, self.log, self.pid_file, self.answers, 120, self.label, self.log, cwd=REPO_ROOT, env=env)

    def _migrate(self, argv: list[str], env: dict[str, str]) -> None:
        """`python -m services.<name> migrate` as the owner of the service's schema, its output in the log."""
        with open(self.log, "ab") as out:
            done = subprocess.run(
                [*argv, "migrate"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
                env=env,
                timeout=300,
                check=False,
            )
        if done.returncode != 0:
            raise DevstackError(f"{self.label}: migrations failed ({done.returncode})\n{tail(self.log)}")

    def answers(self) -> bool:
        return self.get("/readyz") is not None

    def get(self, path: str) -> str | None:
        """Body of a GET on the service when it answers 200, else None."""
        return http_get(self.address + path)

    def consumer_lag(self) -> int | None:
        """Sum of kafka_consumer_lag_messages over the service's consumer groups (None if unknown)."""
        text = self.get("/metrics")
        if text is None:
            return None
        values = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("kafka_consumer_lag_messages{")
        ]
        return int(sum(values)) if values else 0


def http_ports_from_env() -> dict[str, int]:
    """Each service's (first replica's) port: <NAME>_HTTP_PORT or the default."""
    return {name: int(os.environ.get(f"{name.upper()}_HTTP_PORT") or port) for name, port in SERVICES.items()}


def service_components(
    state_dir: Path, env: dict[str, str], replicas: int = 1, ports: dict[str, int] | None = None
) -> list[ServiceProcess]:
    """Every replica of the four services, replica 1 of each first; ports from `ports` or the environment."""
    ports = ports or http_ports_from_env()
    return [
        ServiceProcess(state_dir, name, ports[name] + REPLICA_PORT_STEP * (k - 1), env, replica=k)
        for k in range(1, replicas + 1)
        for name in SERVICES
    ]
