"""Production's department settings match what devstack runs (and what the ACL test checks on the real broker)."""

from __future__ import annotations

from pathlib import Path

from shared.contracts.outreach import REFERRAL
from shared.devstack import departments

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kafka"


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_production_broker_settings_enforce_what_devstack_enforces():
    prod = properties((DEPLOY / "server-departments.properties").read_text())
    dev = departments.listener_properties(
        {
            "listeners": "PLAINTEXT://h:1",
            "advertised.listeners": "PLAINTEXT://h:1",
            "listener.security.protocol.map": "",
        },
        1,
    )
    for key in [
        "authorizer.class.name",
        "allow.everyone.if.no.acl.found",
        "listener.name.departments.sasl.enabled.mechanisms",
        "listener.name.departments.scram-sha-512.sasl.jaas.config",
    ]:
        assert prod[key] == dev[key], key
    assert "DEPARTMENTS:SASL_SSL" in prod["listener.security.protocol.map"]  # TLS outside the loopback devstack
    assert "DEPARTMENTS:SASL_PLAINTEXT" in dev["listener.security.protocol.map"]


def test_the_script_grants_the_topic_outreach_publishes_to():
    script = (DEPLOY / "department-access.sh").read_text()
    assert f"--topic-template '{REFERRAL}'" in script
    assert departments.PROGRAM == DEPLOY / "DepartmentAccess.java"
