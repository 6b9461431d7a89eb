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

from shared.devstack.component import (
    Component,
    DevstackError,
    pid_alive,
    port_open,
    read_pid,
    require_free,
    run_coro,
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


class Kafka(Component):
    """KRaft broker+controller on 127.0.0.1:<port>, controller listener on <port+1>."""

    name = "kafka"
    env_var = "KAFKA_BOOTSTRAP_SERVERS"

    def __init__(self, state_dir: Path, port: int) -> None:
        self.port = port
        self.root = state_dir / "kafka"
        self.data = self.root / "data"
        self.config = self.root / "server.properties"
        self.log4j = self.root / "log4j2.properties"
        self.pid_file = self.root / "kafka.pid"
        self.log = state_dir / "logs" / "kafka.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        pid = read_pid(self.pid_file)
        # The config path is unique to this state dir, so a recycled pid never matches.
        return pid if pid is not None and pid_alive(pid, str(self.config)) else None

    def _write_config(self) -> None:
        """(Re)write server.properties so port changes take effect on the next start."""
        controller = self.port + 1
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            # A static voter set (rather than --standalone's dynamic quorum) keeps the stored
            # metadata independent of the controller port, so DEVSTACK_KAFKA_PORT can change.
            "controller.quorum.voters": f"1@127.0.0.1:{controller}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "auto.create.topics.enable": "false",  # services declare their topics
            "group.initial.rebalance.delay.ms": "0",  # tests should not wait 3s per consumer group
        }
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

    def start(self) -> None:
        hint = "set DEVSTACK_KAFKA_PORT (uses it and the next port) or KAFKA_BOOTSTRAP_SERVERS"
        require_free(self.port, "kafka", hint)
        require_free(self.port + 1, "kafka controller", hint)
        self.root.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        libs = fetch_jars(self.log)
        self._write_config()
        if not (self.data / "meta.properties").exists():
            shutil.rmtree(self.data, ignore_errors=True)  # an interrupted format
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            cmd = self._java_cmd(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id)
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
        with open(self.log, "a") as out:
            proc = subprocess.Popen(
                self._java_cmd(libs, "kafka.Kafka", str(self.config)),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlive the caller and ignore its Ctrl-C
            )
        self.pid_file.write_text(f"{proc.pid}\n")
        try:
            wait_until(self.answers, START_TIMEOUT, "kafka", lambda: proc.poll() is None)
        except DevstackError as exc:
            self.stop()
            raise DevstackError(f"{exc}\n{tail(self.log)}") from None

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, STOP_TIMEOUT, str(self.config))
        self.pid_file.unlink(missing_ok=True)

    def answers(self) -> bool:
        return probe_kafka(self.address)


def probe_kafka(bootstrap: str) -> bool:
    """True if a Kafka admin client gets cluster metadata with at least one broker."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    # aiokafka logs an error per refused connection, so skip it until the port is open.
    if not port_open(host or "127.0.0.1", int(port)):
        return False

    async def check() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
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
