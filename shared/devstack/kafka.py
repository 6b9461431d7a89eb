"""A single-node Apache Kafka broker (KRaft, broker+controller) run from jars fetched by Maven."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from shared.devstack import departments
from shared.devstack.component import (
    Component,
    DevstackError,
    live_pid,
    port_open,
    require_free,
    run_coro,
    spawn,
    tail,
    terminate,
    wait_until,
)

POM = Path(__file__).with_name("kafka-pom.xml")
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0

# Console appender: the JVM's stdout/stderr already go to kafka.log, so one writer holds the file
# and JVM crash output lands next to the broker's own log lines. log4j2's own shutdown hook would
# race Kafka's and silence the broker's shutdown, hence shutdownHook = disable.
LOG4J2 = """\
status = warn
shutdownHook = disable
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def kafka_version() -> str:
    """The kafka.version property of the pom."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = ET.parse(POM).getroot().findtext("m:properties/m:kafka.version", namespaces=ns)
    if not version:
        raise DevstackError(f"no kafka.version in {POM}")
    return version.strip()


def cache_dir() -> Path:
    """Per-user cache shared by all clones, so the jars are downloaded once per machine."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "hss-platform" / f"kafka-{kafka_version()}"


def fetch_jars(log: Path) -> Path:
    """Download the broker jars with Maven unless the cache already holds them; return libs dir."""
    cache = cache_dir()
    libs, marker = cache / "libs", cache / ".complete"
    # The marker holds the pom's hash so editing the pom (e.g. logging deps) refetches.
    want = hashlib.sha256(POM.read_bytes()).hexdigest()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several clones/stacks may share this cache
        if marker.exists() and marker.read_text().strip() == want and libs.is_dir():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise DevstackError("Maven (mvn) is needed once to fetch the Kafka jars")
        partial = cache / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        result = subprocess.run(
            [
                *(mvn, "-q", "-B", "-Dstyle.color=never", "-f", str(POM), "dependency:copy-dependencies"),
                *(f"-DoutputDirectory={partial}", "-DincludeScope=runtime"),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )
        with open(log, "a") as out:
            # Maven 3.8 emits colour resets even in batch mode; keep the log plain text.
            output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
            out.write(f"devstack: mvn fetch of Kafka {kafka_version()} jars exited {result.returncode}\n{output}")
        if result.returncode != 0 or not any(partial.glob("kafka_*.jar")):
            raise DevstackError(f"mvn could not fetch the Kafka jars\n{tail(log)}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        marker.write_text(want + "\n")
        return libs


def _java() -> str:
    """The java launcher: JAVA_HOME first, then PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise DevstackError("java (17+) is needed to run Kafka")
    return found


def broker_properties(node_id: int, port: int, voters: dict[int, int], data: Path) -> dict[str, str]:
    """server.properties of one KRaft node (broker+controller); single-broker and cluster mode both use this.

    `voters` maps each node id to its controller port; the replication settings follow the number of nodes, so a
    three-node cluster keeps internal topics at RF 3 / min ISR 2 and declared topics default to min ISR 2.
    """
    nodes = len(voters)
    replication, min_isr = str(min(nodes, 3)), str(2 if nodes >= 3 else 1)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        # A static voter set (rather than --standalone's dynamic quorum) keeps the stored
        # metadata independent of the controller port, so DEVSTACK_KAFKA_PORT can change.
        "controller.quorum.voters": ",".join(f"{n}@127.0.0.1:{p}" for n, p in sorted(voters.items())),
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{voters[node_id]}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "1",
        "default.replication.factor": replication,
        "min.insync.replicas": min_isr,  # the default for topics that do not set their own
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        "auto.create.topics.enable": "false",  # services declare their topics
        "group.initial.rebalance.delay.ms": "0",  # tests should not wait 3s per consumer group
    }
    # The authorizer and the departments' SASL/SCRAM listener (on port + 10), in both modes.
    return departments.listener_properties(props, port + departments.PORT_OFFSET)


class KafkaNode(Component):
    """One KRaft node (broker+controller) on 127.0.0.1:<port>; its controller listener is on <port+1>."""

    env_var = "KAFKA_BOOTSTRAP_SERVERS"

    def __init__(self, root: Path, log: Path, name: str, node_id: int, port: int, voters: dict[int, int]) -> None:
        self.name, self.node_id, self.port, self.voters = name, node_id, port, voters
        self.root = root
        self.data = root / "data"
        self.config = root / "server.properties"
        self.log4j = root / "log4j2.properties"
        self.pid_file = root / "kafka.pid"
        self.log = log
        self.cluster_id_file = root.parent / "cluster.id" if len(voters) > 1 else None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        return live_pid(self.pid_file, str(self.config))

    def _write_config(self) -> None:
        """(Re)write server.properties so port changes take effect on the next start."""
        props = broker_properties(self.node_id, self.port, self.voters, self.data)
        self.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
        self.log4j.write_text(LOG4J2, encoding="utf-8")

    def _java_cmd(self, libs: Path, main: str, *args: str) -> list[str]:
        """A java command line with the broker classpath and our log4j2 config."""
        return [
            _java(),
            "-Xms256m",
            "-Xmx1g",  # many short-lived test topics need more than 512 MB of metadata
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j}",
            "-cp",
            f"{libs}/*",  # java expands the wildcard itself; no shell involved
            main,
            *args,
        ]

    def _cluster_id(self) -> str:
        """A new cluster id, or the one every node of a cluster shares (made by the first node formatted)."""
        fresh = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if self.cluster_id_file is None:
            return fresh
        with open(self.cluster_id_file.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the nodes are formatted side by side
            if not self.cluster_id_file.exists():
                self.cluster_id_file.write_text(fresh + "\n")
            return self.cluster_id_file.read_text().strip()

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Format the storage on first use and start the JVM without waiting for it to answer."""
        hint = "set DEVSTACK_KAFKA_PORT (uses it and the next ports) or KAFKA_BOOTSTRAP_SERVERS"
        require_free(self.port, self.name, hint)
        require_free(self.voters[self.node_id], f"{self.name} controller", hint)
        require_free(self.port + departments.PORT_OFFSET, f"{self.name} department listener", hint)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        libs = fetch_jars(self.log)
        self._write_config()
        if not (self.data / "meta.properties").exists():
            shutil.rmtree(self.data, ignore_errors=True)  # an interrupted format
            # `--cluster-id=`: a base64url id may start with "-", which the parser would take for an option.
            cmd = self._java_cmd(libs, "kafka.tools.StorageTool", "format", f"--cluster-id={self._cluster_id()}")
            with open(self.log, "a") as out:
                result = subprocess.run(
                    [*cmd, "-c", str(self.config)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if result.returncode != 0:
                raise DevstackError(f"formatting Kafka storage failed\n{tail(self.log)}")
        self._proc = spawn(
            self._java_cmd(libs, "kafka.Kafka", str(self.config)), self.log, self.pid_file, cwd=self.root
        )

    def wait_ready(self) -> None:
        """Return once this broker is registered in the cluster; stop it when it does not come up."""
        proc = getattr(self, "_proc", None)
        alive = (lambda: proc.poll() is None) if proc is not None else (lambda: self.pid() is not None)
        try:
            wait_until(self.answers, START_TIMEOUT, self.name, alive)
        except DevstackError as exc:
            self.stop()
            raise DevstackError(f"{exc}\n{tail(self.log)}") from None

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, STOP_TIMEOUT, str(self.config))
        self.pid_file.unlink(missing_ok=True)

    def answers(self) -> bool:
        return probe_kafka(self.address, node_id=self.node_id)

    def grant_departments(self, bootstrap: str, access_root: Path) -> None:
        """Create the department users and ACLs (once per state dir; they live in the cluster metadata)."""
        program = self._java_cmd(fetch_jars(self.log), str(departments.PROGRAM))
        departments.ensure_access(program, access_root, bootstrap, self.log)


class Kafka(KafkaNode):
    """The default single-node Kafka under <state>/kafka, client port <port>, controller port <port+1>, the
    departments' SASL/SCRAM listener on <port+10>."""

    def __init__(self, state_dir: Path, port: int) -> None:
        super().__init__(state_dir / "kafka", state_dir / "logs" / "kafka.log", "kafka", 1, port, {1: port + 1})

    @property
    def department_bootstrap(self) -> str:
        return f"127.0.0.1:{self.port + departments.PORT_OFFSET}"

    def start(self) -> None:
        super().start()
        try:
            self.grant_departments(self.address, self.root)
        except DevstackError:
            self.stop()
            raise


class KafkaCluster(Component):
    """`nodes` KRaft nodes, each broker and controller (node k: client port <port+2(k-1)>, controller port +1,
    department listener +10).

    Combined roles: three JVMs instead of six on a small machine, and losing one node loses a broker and a voter
    at once, as losing a real machine does; the quorum of three voters survives one loss.
    """

    name = "kafka"
    env_var = "KAFKA_BOOTSTRAP_SERVERS"

    def __init__(self, state_dir: Path, port: int, nodes: int = 3) -> None:
        self.port = port
        voters = {k: port + 2 * (k - 1) + 1 for k in range(1, nodes + 1)}
        self.nodes = [
            KafkaNode(
                state_dir / "kafka-cluster" / f"node{k}",
                state_dir / "logs" / f"kafka-{k}.log",
                f"kafka#{k}",
                k,
                port + 2 * (k - 1),
                voters,
            )
            for k in voters
        ]

    @property
    def address(self) -> str:
        return ",".join(n.address for n in self.nodes)

    def node(self, k: int) -> KafkaNode:
        """Node k (1-based)."""
        return self.nodes[k - 1]

    def pid(self) -> int | None:
        return self.nodes[0].pid()

    def is_alive(self) -> bool:
        return all(n.is_alive() for n in self.nodes)

    @property
    def department_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port + departments.PORT_OFFSET}" for n in self.nodes)

    def start(self) -> None:
        # A broker only registers once a quorum of controllers runs, so every node is launched before any is awaited.
        missing = [n for n in self.nodes if not n.is_alive()]
        for n in missing:
            n.launch()
        try:
            for n in missing:
                n.wait_ready()
            self.nodes[0].grant_departments(self.address, self.nodes[0].root.parent)
        except DevstackError:
            self.stop()
            raise

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def answers(self) -> bool:
        return probe_kafka(self.address, brokers=len(self.nodes))


def probe_kafka(bootstrap: str, *, node_id: int | None = None, brokers: int = 1) -> bool:
    """True if a Kafka admin client gets cluster metadata with `brokers` brokers (including `node_id`, if given)."""
    addresses = [a.rpartition(":") for a in bootstrap.split(",")]
    # aiokafka logs an error per refused connection, so skip it until a port is open.
    if not any(port_open(host or "127.0.0.1", int(port)) for host, _, port in addresses):
        return False

    async def check() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            ids = {b["node_id"] for b in cluster.get("brokers", [])}
            return len(ids) >= brokers and (node_id is None or node_id in ids)
        except Exception:  # any client error just means "not ready yet"
            return False
        finally:
            await admin.close()

    aiokafka_log = logging.getLogger("aiokafka")
    level = aiokafka_log.level
    aiokafka_log.setLevel(logging.CRITICAL)  # probing a starting broker is noisy by design
    try:
        return run_coro(check)
    finally:
        aiokafka_log.setLevel(level)
