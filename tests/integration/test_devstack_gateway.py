"""devstack's gateway component: started with the services, listed by `status` and in topology.json, its
upstreams following `--replicas`, stopped by `down`. The services themselves are not started here (their start is
covered by the e2e tests): the gateway's answers for them are then its own 502 problem+json."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import httpx
import pytest

from shared.devstack import ServiceProcess, Stack, StackInfo
from shared.devstack.__main__ import _print_status
from shared.devstack.component import port_open

pytestmark = pytest.mark.integration


def test_the_gateway_comes_and_goes_with_the_services(
    tmp_path: Path, stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ServiceProcess, "ensure", lambda self: None)
    dev = Stack.on_free_ports(tmp_path / "s", database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap)
    gateway = dev.gateway()
    try:
        dev.services_up(replicas=2)

        topology = json.loads((dev.state / "topology.json").read_text())
        assert topology == {"brokers": 1, "replicas": 2, "gateway": f"http://127.0.0.1:{dev.gateway_port}"}
        conf = gateway.conf.read_text()
        visits = dev.http_ports["visits"]
        assert f"server 127.0.0.1:{visits};" in conf and f"server 127.0.0.1:{visits + 10};" in conf
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            _print_status(dev)
        (line,) = [row for row in out.getvalue().splitlines() if row.startswith("gateway")]
        assert " up " in line and gateway.address in line
        r = httpx.get(f"{gateway.address}/api/v1/visits/v1", timeout=10)
        assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["title"] == "Bad gateway"

        dev.services_up(replicas=1)  # fewer replicas: the running nginx reloads its upstreams
        assert f"server 127.0.0.1:{visits + 10};" not in gateway.conf.read_text()
        assert gateway.answers()

        dev.down()
        assert gateway.pid() is None and not port_open("127.0.0.1", dev.gateway_port)
        assert not (dev.state / "topology.json").exists()
    finally:
        dev.down()
