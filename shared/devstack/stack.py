"""The dev stack as a whole: its topology, its components, and up/down/status/kill over all of them."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from shared.db import lock_key, service_database_url
from shared.devstack import departments
from shared.devstack.component import (
    Component,
    ComponentStatus,
    DevstackError,
    External,
    free_port_block,
    run_coro,
    wait_until,
)
from shared.devstack.gateway import DEFAULT_PORT as DEFAULT_GATEWAY_PORT
from shared.devstack.gateway import Gateway
from shared.devstack.idp import IdentityProvider
from shared.devstack.kafka import Kafka, KafkaCluster, KafkaNode, probe_kafka
from shared.devstack.postgres import Postgres, ensure_service_databases, ensure_service_roles, probe_postgres
from shared.devstack.services import (
    REPLICA_PORT_STEP,
    SERVICES,
    ServiceProcess,
    http_ports_from_env,
    service_components,
)
from shared.devstack.smtp import DEFAULT_PORT as DEFAULT_SMTP_PORT
from shared.devstack.smtp import SmtpServer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PG_PORT = 55432
DEFAULT_KAFKA_PORT = 59092
READY_TIMEOUT = 60.0
TOPOLOGY_FILE = "topology.json"


@dataclass(frozen=True)
class StackInfo:
    """Addresses of the running infrastructure. `database_url` names the PostgreSQL cluster (its maintenance
    database); each service has a database of its own there, `shared.db.service_database_url(database_url, name)`."""

    database_url: str
    kafka_bootstrap: str
    brokers: int = 1

    def env(self) -> dict[str, str]:
        """The environment variables services read these addresses (and, on a cluster, durability) from."""
        env = {"DATABASE_URL": self.database_url, "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap}
        if self.brokers >= 3:
            # Declared topics get RF 3 and min ISR 2: an acks=all write survives the loss of any one broker.
            env |= {"KAFKA_TOPIC_REPLICATION_FACTOR": "3", "KAFKA_TOPIC_MIN_INSYNC_REPLICAS": "2"}
        return env


@dataclass(frozen=True)
class Topology:
    """How many Kafka brokers and how many processes per service, and the gateway's URL once the services run;
    remembered in the state folder by `up`."""

    brokers: int = 1
    replicas: int = 1
    gateway: str | None = None

    def __post_init__(self) -> None:
        if self.brokers not in (1, 3):
            raise DevstackError(f"--brokers must be 1 or 3, not {self.brokers}")
        if not 1 <= self.replicas <= 9:
            raise DevstackError(f"--replicas must be 1..9, not {self.replicas}")


@dataclass(frozen=True)
class RelayHolder:
    """Which process holds a service's relay lock (label None: nobody, or a process devstack does not know)."""

    service: str
    label: str | None
    backend_pid: int | None


@dataclass
class Stack:
    """One dev stack: PostgreSQL, Kafka (1 broker or a 3-node cluster) and N replicas of each service.

    `Stack.from_env()` is the stack of the CLI (ports and folder from the environment); tests build their own,
    e.g. `Stack.on_free_ports(tmp_path, brokers=3)`, and call `up()`, `services_up(replicas=2)`, `kill("kafka#2")`,
    `down()`. Database and Kafka given as addresses are external: used as is, never started or stopped.
    """

    state: Path
    pg_port: int = DEFAULT_PG_PORT
    kafka_port: int = DEFAULT_KAFKA_PORT
    http_ports: dict[str, int] = field(default_factory=lambda: dict(SERVICES))
    gateway_port: int = DEFAULT_GATEWAY_PORT
    smtp_port: int = DEFAULT_SMTP_PORT
    idp_port: int | None = None  # the local identity provider (OIDC sign-in), run only when a port is given
    database_url: str | None = None  # external PostgreSQL
    kafka_bootstrap: str | None = None  # external Kafka
    service_env: dict[str, str] = field(default_factory=dict)  # extra variables for every service process

    @classmethod
    def from_env(cls) -> Stack:
        """The stack the environment describes (DEVSTACK_DIR, DEVSTACK_*_PORT, <SERVICE>_HTTP_PORT, external URLs)."""
        return cls(
            state=state_dir(),
            pg_port=int(os.environ.get("DEVSTACK_PG_PORT") or DEFAULT_PG_PORT),
            kafka_port=int(os.environ.get("DEVSTACK_KAFKA_PORT") or DEFAULT_KAFKA_PORT),
            http_ports=http_ports_from_env(),
            gateway_port=int(os.environ.get("GATEWAY_HTTP_PORT") or DEFAULT_GATEWAY_PORT),
            smtp_port=int(os.environ.get("SMTP_PORT") or DEFAULT_SMTP_PORT),
            idp_port=int(os.environ["IDP_HTTP_PORT"]) if os.environ.get("IDP_HTTP_PORT") else None,
            database_url=os.environ.get("DATABASE_URL") or None,
            kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        )

    @classmethod
    def on_free_ports(
        cls,
        state: Path,
        *,
        database_url: str | None = None,
        kafka_bootstrap: str | None = None,
        service_env: dict[str, str] | None = None,
    ) -> Stack:
        """A private stack in `state` on ports nobody uses (for tests); addresses given are shared, not started."""
        http = free_port_block(REPLICA_PORT_STEP * 9)  # service i at base + i, replica k at + 10 (k - 1)
        return cls(
            state=state.resolve(),
            pg_port=free_port_block(1),
            kafka_port=free_port_block(16),  # three nodes × (client, controller), department listeners at +10
            http_ports={name: http + i for i, name in enumerate(SERVICES)},
            gateway_port=free_port_block(1),
            smtp_port=free_port_block(1),
            database_url=database_url,
            kafka_bootstrap=kafka_bootstrap,
            service_env=dict(service_env or {}),
        )

    # -- topology --------------------------------------------------------------------------------------------

    @property
    def topology(self) -> Topology:
        """The topology `up` chose (the default when nothing runs)."""
        try:
            return Topology(**json.loads((self.state / TOPOLOGY_FILE).read_text()))
        except FileNotFoundError:
            return Topology()

    def _remember(self, topology: Topology) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / TOPOLOGY_FILE).write_text(json.dumps(asdict(topology)) + "\n")

    # -- components ------------------------------------------------------------------------------------------

    def postgres(self) -> Component:
        """PostgreSQL: the private cluster, or the external one."""
        url = self.database_url
        if url:
            return External("postgres", "DATABASE_URL", url, lambda: probe_postgres(url))
        return Postgres(self.state, self.pg_port)

    def kafka(self, brokers: int | None = None) -> Component:
        """Kafka: one broker, a three-node cluster, or the external one."""
        bootstrap = self.kafka_bootstrap
        if bootstrap:
            return External("kafka", "KAFKA_BOOTSTRAP_SERVERS", bootstrap, lambda: probe_kafka(bootstrap))
        if (brokers or self.topology.brokers) == 1:
            return Kafka(self.state, self.kafka_port)
        return KafkaCluster(self.state, self.kafka_port, brokers or self.topology.brokers)

    def department_access(self, department: str) -> departments.ClientSettings:
        """A department's Kafka client settings: SCRAM user, its topic, the department listeners' addresses."""
        kafka = self.kafka()
        if isinstance(kafka, Kafka):
            return departments.client_settings(kafka.root, kafka.department_bootstrap, department)
        if isinstance(kafka, KafkaCluster):
            return departments.client_settings(kafka.nodes[0].root.parent, kafka.department_bootstrap, department)
        raise DevstackError("department credentials exist only on the devstack's own broker")

    def brokers(self) -> list[Component]:
        """Each Kafka process (`kafka` alone, or `kafka#1`..`kafka#3`)."""
        kafka = self.kafka()
        return list(kafka.nodes) if isinstance(kafka, KafkaCluster) else [kafka]

    def components(self) -> list[Component]:
        """The infrastructure in start order."""
        return [self.postgres(), self.kafka()]

    def info(self) -> StackInfo:
        """The infrastructure's addresses (whether or not it runs)."""
        pg, kafka = self.components()
        brokers = len(kafka.nodes) if isinstance(kafka, KafkaCluster) else 1
        return StackInfo(pg.address, kafka.address, brokers)

    def services(self, replicas: int | None = None) -> list[ServiceProcess]:
        """Every replica of the four services (replica 1 of each first), configured for this stack."""
        info = self.info()
        urls = {n: f"http://127.0.0.1:{p}" for n, p in self.http_ports.items()}
        env = {
            **info.env(),
            # Reporting reads the other services' APIs (its rebuild); replica 1 of each is the one it asks.
            **{f"REPORTING_{n.upper()}_URL": urls[n] for n in SERVICES if n != "reporting"},
            # Outreach's email channel writes to the local SMTP server; links in mails point at the gateway.
            "OUTREACH_SMTP_HOST": "127.0.0.1",
            "OUTREACH_SMTP_PORT": str(self.smtp_port),
            "OUTREACH_EMAIL_LINK_BASE": self.gateway().address,
            **(idp.service_env() if (idp := self.idp()) else {}),  # its tokens too, dev tokens as before
            **self.service_env,
        }
        return service_components(self.state, env, replicas or self.topology.replicas, self.http_ports)

    def gateway(self, replicas: int | None = None) -> Gateway:
        """The gateway (nginx) in front of every replica of the four services."""
        n = replicas or self.topology.replicas
        ports = {name: [port + REPLICA_PORT_STEP * k for k in range(n)] for name, port in self.http_ports.items()}
        return Gateway(self.state, self.gateway_port, ports)

    def idp(self) -> IdentityProvider | None:
        """The local OpenID Connect provider (frontends/idp/) when IDP_HTTP_PORT is set: the app at the gateway's
        /app/ then signs in with it, and the services accept its tokens."""
        if self.idp_port is None:
            return None
        return IdentityProvider(self.state, self.idp_port, [f"{self.gateway().address}/app/"])

    def smtp(self) -> SmtpServer:
        """The local SMTP server (aiosmtpd) receiving the services' mails into a Maildir, started with them."""
        return SmtpServer(self.state / "smtp", self.smtp_port)

    def process(self, label: str) -> Component:
        """A process by name: `postgres`, `kafka` / `kafka#2`, `visits` (= `visits#1`) / `visits#2`, `gateway`."""
        name, _, number = label.partition("#")
        k = int(number or 1)
        if name == "postgres":
            return self.postgres()
        if name == "gateway":
            return self.gateway()
        if name == "kafka":
            brokers = self.brokers()
            if not 1 <= k <= len(brokers):
                raise DevstackError(f"no {label}: the stack runs {len(brokers)} broker(s)")
            return brokers[k - 1]
        if name in SERVICES:
            # Replicas beyond the topology may still be asked for by name (a test adding a third replica).
            procs = self.services(max(k, self.topology.replicas))
            return next(p for p in procs if p.name == name and p.replica == k)
        raise DevstackError(f"unknown process {label!r}: postgres, kafka[#k], gateway or {', '.join(SERVICES)}[#k]")

    # -- lifecycle -------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise up/down across processes (parallel test runs share one stack)."""
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / "devstack.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def up(self, brokers: int | None = None) -> StackInfo:
        """Start whatever infrastructure is not running yet (with `brokers` Kafka nodes) and return the addresses."""
        with self._locked():
            current = self.topology
            want = Topology(brokers or current.brokers, current.replicas, current.gateway)
            if want.brokers != current.brokers and self._infra_running(current.brokers):
                raise DevstackError(
                    f"Kafka runs with {current.brokers} broker(s); `down` first to switch to {want.brokers}"
                )
            self._remember(want)
            parts = self.components()
            missing = [c for c in parts if not c.is_alive()]
            try:
                if missing:
                    # Components are independent; starting them side by side halves the cold start.
                    with ThreadPoolExecutor(len(missing)) as pool:
                        for future in [pool.submit(c.ensure) for c in missing]:
                            future.result()
                # Also covers external services and a process that runs but has stopped answering.
                for c in parts:
                    wait_until(c.answers, READY_TIMEOUT, c.name, c.is_alive)
                ensure_service_roles(parts[0].address)
                ensure_service_databases(parts[0].address, SERVICES)  # one database per service, as deployed
            except BaseException:
                # Leave nothing behind that this call started: a broker left running would block the next try.
                for c in reversed(missing):
                    with contextlib.suppress(Exception):
                        c.stop()
                raise
        return self.info()

    def _infra_running(self, brokers: int) -> bool:
        """True when any broker of a `brokers`-node Kafka of this stack runs."""
        kafka = self.kafka(brokers)
        nodes = kafka.nodes if isinstance(kafka, KafkaCluster) else [kafka]
        return any(n.pid() is not None for n in nodes)

    def services_up(self, replicas: int | None = None) -> list[ServiceProcess]:
        """Start the infrastructure, then every replica not running (stopping replicas beyond `replicas`), then the
        gateway in front of them (its upstreams rewritten when the number of replicas changed).

        Replica 1 of every service comes up first, so a fresh database is migrated before the others start.
        """
        self.up()
        with self._locked():
            current = self.topology
            want = Topology(current.brokers, replicas or current.replicas, current.gateway)
            for proc in self.services(max(want.replicas, current.replicas)):
                if proc.replica > want.replicas:
                    proc.stop()
            self._remember(want)
            self.smtp().ensure()
            if idp := self.idp():
                idp.ensure()
            procs = self.services(want.replicas)
            for proc in procs:
                proc.ensure()
            gateway = self.gateway(want.replicas)
            gateway.ensure()
            gateway.write_sign_in(idp.app_config() if idp else None)
            self._remember(Topology(want.brokers, want.replicas, gateway.address))
        return procs

    def services_down(self) -> None:
        """Stop the gateway and every service process devstack started."""
        with self._locked():
            self.gateway().stop()
            for proc in reversed(self.services()):
                proc.stop()
            self.smtp().stop()
            if idp := self.idp():
                idp.stop()
            current = self.topology
            if current.gateway is not None and (self.state / TOPOLOGY_FILE).exists():
                self._remember(Topology(current.brokers, current.replicas))

    def down(self) -> None:
        """Stop the services and the infrastructure devstack started (external parts are left alone)."""
        self.services_down()
        with self._locked():
            for component in reversed(self.components()):
                component.stop()
            (self.state / TOPOLOGY_FILE).unlink(missing_ok=True)

    def kill(self, label: str) -> None:
        """kill -9 one process (fault drills): a broker, a replica, or PostgreSQL's postmaster."""
        proc = self.process(label)
        if isinstance(proc, ServiceProcess | KafkaNode):
            proc.kill()
        else:
            raise DevstackError(f"kill takes a broker or a service replica, not {label}")

    def restart(self, label: str) -> None:
        """Stop (gracefully) and start one process; a killed one is just started."""
        proc = self.process(label)
        proc.stop()
        proc.start()

    def remove(self) -> None:
        """`down`, then delete the state folder (tests' private stacks)."""
        self.down()
        shutil.rmtree(self.state, ignore_errors=True)

    # -- status ----------------------------------------------------------------------------------------------

    def status(self) -> list[ComponentStatus]:
        """PostgreSQL and each broker."""
        return [c.status() for c in [self.postgres(), *self.brokers()]]

    def databases(self) -> dict[str, str | None]:
        """Each service's database on the stack's PostgreSQL and its size (None: it does not exist, or PostgreSQL
        does not answer)."""
        url = self.info().database_url
        names = {n: urllib.parse.urlsplit(service_database_url(url, n)).path.lstrip("/") for n in SERVICES}

        async def sizes() -> dict[str, str]:
            conn = await asyncpg.connect(url, timeout=5)
            try:
                rows = await conn.fetch(
                    "SELECT datname, pg_size_pretty(pg_database_size(datname)) FROM pg_database"
                    " WHERE datname = ANY($1)",
                    list(names.values()),
                )
                return {r[0]: r[1] for r in rows}
            finally:
                await conn.close()

        try:
            found = run_coro(sizes)
        except (OSError, TimeoutError, asyncpg.PostgresError):
            found = {}
        return {n: found.get(db) for n, db in names.items()}

    def relay_holders(self) -> list[RelayHolder]:
        """Per service, the replica whose relay holds the advisory lock, read from pg_locks (the lock's truth)."""
        procs = self.services()
        schemas = {n: self.service_env.get(f"{n.upper()}_DB_SCHEMA") or n for n in SERVICES}
        url = self.info().database_url

        async def holders() -> dict[str, tuple[int, int] | None]:
            conn = await asyncpg.connect(url, timeout=5)
            try:
                found: dict[str, tuple[int, int] | None] = {}
                for name, schema in schemas.items():
                    key = lock_key(f"relay:{schema}") & 0xFFFFFFFFFFFFFFFF  # pg_locks shows it as two oids
                    row = await conn.fetchrow(
                        "SELECT l.pid, a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::bigint::oid"
                        " AND l.objid = $2::bigint::oid AND l.objsubid = 1",
                        key >> 32,
                        key & 0xFFFFFFFF,
                    )
                    found[name] = (row["pid"], row["client_port"]) if row else None
                return found
            finally:
                await conn.close()

        try:
            found = run_coro(holders)
        except (OSError, TimeoutError, asyncpg.PostgresError):
            return [RelayHolder(n, None, None) for n in SERVICES]
        out = []
        for name, hit in found.items():
            if hit is None:
                out.append(RelayHolder(name, None, None))
                continue
            backend, client_port = hit
            owner = _socket_owner(client_port, [p for p in procs if p.name == name])
            out.append(RelayHolder(name, owner.label if owner else None, backend))
        return out

    def consumer_lag(self) -> dict[str, int | None]:
        """Lag per consumer group of the running services, from the broker: end offsets − committed offsets."""
        prefix = self.service_env.get("HSS_TOPIC_PREFIX", "")
        groups: set[str] = set()
        for proc in self.services():
            for line in (proc.get("/metrics") or "").splitlines():
                if line.startswith("kafka_consumer_lag_messages{"):
                    groups.add(prefix + line.split('group="', 1)[1].split('"', 1)[0])
        if not groups:
            return {}
        aiokafka_log = logging.getLogger("aiokafka")
        level = aiokafka_log.level
        aiokafka_log.setLevel(logging.CRITICAL)  # a killed broker is expected here; `?` says enough
        try:
            return run_coro(lambda: group_lag(self.info().kafka_bootstrap, sorted(groups)))
        finally:
            aiokafka_log.setLevel(level)


async def group_lag(bootstrap: str, groups: list[str]) -> dict[str, int | None]:
    """Per group, the sum over its committed partitions of end offset − committed offset (None: unknown)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=5000)
    out: dict[str, int | None] = {}
    try:
        await admin.start()
        await consumer.start()
        for group in groups:
            try:
                committed = await admin.list_consumer_group_offsets(group)
                ends = await consumer.end_offsets(list(committed)) if committed else {}
                out[group] = sum(max(ends[tp] - om.offset, 0) for tp, om in committed.items() if om.offset >= 0)
            except Exception:  # a group whose coordinator is moving: report unknown rather than fail status
                out[group] = None
    finally:
        await consumer.stop()
        await admin.close()
    return out


def _socket_owner(client_port: int, procs: list[ServiceProcess]) -> ServiceProcess | None:
    """The process whose TCP socket has local port `client_port` (maps a PostgreSQL backend to its client)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == client_port:
                    inodes.add(fields[9])
    for proc in procs:
        pid = proc.pid()
        if pid is None:
            continue
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return proc
    return None


# -- the CLI's stack (from the environment); kept as functions for existing callers ----------------------------


def state_dir() -> Path:
    """Where data, pid files and logs live: $DEVSTACK_DIR or <repo>/.devstack."""
    return Path(os.environ.get("DEVSTACK_DIR") or REPO_ROOT / ".devstack").resolve()


def department_access(department: str) -> departments.ClientSettings:
    """A department's Kafka client settings on the environment's stack."""
    return Stack.from_env().department_access(department)


def components() -> list[Component]:
    """The environment's stack's infrastructure in start order."""
    return Stack.from_env().components()


def ensure_up() -> StackInfo:
    """Start whatever is not running yet and return the addresses."""
    return Stack.from_env().up()


def stop() -> None:
    """Stop the services and the components devstack started; external ones are left alone."""
    Stack.from_env().down()


def status() -> list[ComponentStatus]:
    """Current state of each infrastructure process."""
    return Stack.from_env().status()


def services(info: StackInfo | None = None) -> list[ServiceProcess]:
    """Every service process of the environment's stack."""
    return Stack.from_env().services()


def services_up(replicas: int | None = None) -> list[ServiceProcess]:
    """Start the infrastructure, then every service replica that is not running; returns them once ready."""
    return Stack.from_env().services_up(replicas)


def services_down() -> None:
    """Stop the service processes devstack started."""
    Stack.from_env().services_down()
