"""docs/asyncapi.yaml as its readers' tools see it: the official AsyncAPI parser and the HTML generator."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tools.docs import consumer_groups

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "asyncapi.yaml"


def asyncapi_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/asyncapi.sh (installs the pinned npm packages on first use)."""
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "asyncapi.sh"), *args], capture_output=True, text=True, timeout=600
    )


def test_the_official_parser_accepts_the_document_without_errors_or_warnings():
    run = asyncapi_tool("validate", str(DOC))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "valid AsyncAPI 3.0.0" in run.stdout
    assert not [line for line in run.stdout.splitlines() if line.startswith(("error", "warning"))], run.stdout


def test_the_document_has_receive_operations_dead_letter_channels_and_kafka_bindings():
    doc = yaml.safe_load(DOC.read_text())
    ops = doc["operations"].values()
    receives = [op["bindings"]["kafka"]["groupId"] for op in ops if op["action"] == "receive"]
    groups = {group["const"] for group in receives if "const" in group}
    assert groups == set(consumer_groups()) and len(groups) >= 4
    assert {"pattern": "^[a-z_]+\\..+$", "type": "string"} in receives  # other departments' subscribers
    addresses = {ch["address"] for ch in doc["channels"].values()}
    assert "visits.finding.events.outreach.findings.dlt" in addresses
    assert "outreach.referral.events" in addresses or "outreach.referral.{department}.events" in addresses
    for ch in doc["channels"].values():
        assert ch["bindings"]["kafka"]["partitions"] >= 1
        assert {t["name"] for t in ch["tags"]} & {"public", "internal"}
    for name, message in doc["components"]["messages"].items():
        assert message["bindings"]["kafka"]["key"]["type"] == "string", name
        assert "headers" in message, name
    assert "$defs" not in DOC.read_text()


def test_the_html_generator_renders_every_channel(tmp_path):
    run = asyncapi_tool("render", str(DOC), str(tmp_path))
    assert run.returncode == 0, run.stdout + run.stderr
    html = (tmp_path / "index.html").read_text()
    doc = yaml.safe_load(DOC.read_text())
    assert doc["info"]["title"] in html
    missing = [ch["address"] for ch in doc["channels"].values() if ch["address"] not in html]
    assert not missing
