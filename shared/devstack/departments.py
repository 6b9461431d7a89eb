"""Departments on the dev broker: a SASL/SCRAM listener, one user per department, ACLs to its own referral topic.

The services keep the internal PLAINTEXT listener (its principal, ANONYMOUS, is a super user); departments connect to
the DEPARTMENTS listener (<kafka port> + 10) with their own credentials and may only read
`outreach.referral.<department>.events` with consumer groups named `<department>.*`. The users and ACLs are made by
deploy/kafka/DepartmentAccess.java (Kafka's Admin API), the same program production runs (deploy/kafka/README.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.contracts.common import Department
from shared.contracts.outreach import REFERRAL, referral_topic
from shared.devstack.component import DevstackError, tail

PORT_OFFSET = 10  # the department listener of a broker on port P listens on P + 10
MECHANISM = "SCRAM-SHA-512"
PROGRAM = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "DepartmentAccess.java"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def listener_properties(props: dict[str, str], port: int) -> dict[str, str]:
    """Broker properties with the authorizer and the DEPARTMENTS SASL_PLAINTEXT/SCRAM listener (on `port`)."""
    address = f"127.0.0.1:{port}"
    return {
        **props,
        "listeners": f"{props['listeners']},DEPARTMENTS://{address}",
        "advertised.listeners": f"{props['advertised.listeners']},DEPARTMENTS://{address}",
        "listener.security.protocol.map": f"{props['listener.security.protocol.map']},DEPARTMENTS:SASL_PLAINTEXT",
        "listener.name.departments.sasl.enabled.mechanisms": MECHANISM,
        "listener.name.departments.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "authorizer.class.name": AUTHORIZER,
        # The internal and controller listeners are PLAINTEXT on loopback: their principal is ANONYMOUS. Everyone
        # else (the departments) gets only what an ACL allows.
        "super.users": "User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
    }


@dataclass(frozen=True)
class ClientSettings:
    """What a department's Kafka client needs."""

    department: str
    bootstrap: str
    password: str

    @property
    def topic(self) -> str:
        return referral_topic(self.department)

    @property
    def group_prefix(self) -> str:
        return f"{self.department}."

    def aiokafka(self) -> dict[str, str]:
        """Keyword arguments for aiokafka clients."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": self.department,
            "sasl_plain_password": self.password,
        }

    def properties(self) -> str:
        """Java/librdkafka client properties (what the department's developers paste into their config)."""
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{self.department}" password="{self.password}";'
        )
        return (
            f"# {self.department}: read {self.topic} with group ids starting {self.group_prefix}\n"
            f"bootstrap.servers={self.bootstrap}\n"
            "security.protocol=SASL_PLAINTEXT\n"
            f"sasl.mechanism={MECHANISM}\n"
            f"sasl.jaas.config={jaas}\n"
            f"sasl.username={self.department}\n"
            f"sasl.password={self.password}\n"
            f"group.id={self.group_prefix}referrals\n"
            f"topic={self.topic}\n"
        )


def passwords(root: Path) -> dict[str, str]:
    """Each department's dev password, made once per state dir and kept in <kafka root>/departments.json (0600)."""
    path = root / "departments.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = {d.value: known.get(d.value) or secrets.token_urlsafe(24) for d in Department}
    if wanted != known:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(wanted, out, indent=2)
        path.with_suffix(".tmp").replace(path)
    return wanted


def client_settings(root: Path, bootstrap: str, department: str) -> ClientSettings:
    """The client settings of one department on the devstack broker (`bootstrap`: its department listeners)."""
    Department(department)  # refuse unknown names early
    return ClientSettings(department, bootstrap, passwords(root)[department])


def run_access_program(
    java_cmd: list[str],
    bootstrap: str,
    lines: list[str],
    *,
    log: Path,
    topic_prefix: str = "",
    revoke: bool = False,
) -> None:
    """Run DepartmentAccess.java (`java_cmd` ends with PROGRAM; one JVM for every department); stdin has passwords."""
    args = [*java_cmd, "--bootstrap-server", bootstrap, "--topic-template", REFERRAL]
    if topic_prefix:
        args += ["--topic-prefix", topic_prefix]
    if revoke:
        args.append("--revoke")
    with open(log, "a") as out:
        result = subprocess.run(
            args, input="\n".join(lines) + "\n", text=True, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise DevstackError(f"setting up department access failed\n{tail(log)}")


def ensure_access(java_cmd: list[str], root: Path, bootstrap: str, log: Path) -> None:
    """Create the department users and ACLs once per state dir (again when departments or passwords change)."""
    secrets_by_department = passwords(root)
    lines = [f"{d} {p}" for d, p in sorted(secrets_by_department.items())]
    digest = hashlib.sha256(("\n".join(lines) + REFERRAL + PROGRAM.read_text()).encode()).hexdigest()
    marker = root / "departments.applied"
    if marker.exists() and marker.read_text().strip() == digest:
        return
    run_access_program(java_cmd, bootstrap, lines, log=log)
    marker.write_text(digest + "\n")
