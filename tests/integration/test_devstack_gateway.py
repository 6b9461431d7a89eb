"""devstack's gateway component: started with the services, listed by `status` and in topology.json, its
upstreams following `--replicas`, stopped by `down`. The services themselves are not started here (their start is
covered by the e2e tests): the gateway's answers for them are then its own 502 problem+json."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import secrets
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from shared.auth import Role, Verifier
from shared.devstack import ServiceProcess, Stack, StackInfo
from shared.devstack.__main__ import _print_status
from shared.devstack.component import port_open
from shared.devstack.idp import CLIENT_ID, Account, IdentityProvider
from shared.settings import ServiceSettings
from shared.testing.fixtures import free_port

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


def _code_flow(idp: IdentityProvider, redirect_uri: str, username: str, password: str, verifier: str) -> str:
    """An authorization code through the provider's login form, as a browser would get it (S256 challenge)."""
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "client_id": CLIENT_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": "openid profile api",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s1",
    }
    with httpx.Client(base_url=idp.address, timeout=10) as browser:
        r = browser.get("/auth", params=query)
        for _ in range(10):  # the login form, then consent (granted at once), then back to the app
            location = r.headers["location"]
            if location.startswith(redirect_uri):
                answer = parse_qs(urlsplit(location).query)
                assert answer["state"] == ["s1"]
                return answer["code"][0]
            r = browser.get(location)
            if r.status_code == 200 and 'name="password"' in r.text:
                r = browser.post(f"{location}/login", data={"username": username, "password": password})
    raise AssertionError("no code after ten redirects")


def test_the_identity_provider_runs_with_the_services_when_given_a_port(
    tmp_path: Path, stack: StackInfo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IDP_HTTP_PORT: devstack runs the local OpenID Connect provider with the services, gives them its JWKS and
    issuer, and the gateway names it to the app; a code from its login form, exchanged with the PKCE verifier,
    gives an ES256 access token the kit's production verifier accepts (the same exchange without the verifier is
    refused); `down` stops it."""
    monkeypatch.setattr(ServiceProcess, "ensure", lambda self: None)
    dev = Stack.on_free_ports(tmp_path / "s", database_url=stack.database_url, kafka_bootstrap=stack.kafka_bootstrap)
    dev.idp_port = free_port()
    idp = dev.idp()
    assert idp is not None
    try:
        dev.services_up()
        assert idp.answers()
        env = dev.services()[0].env
        assert env["HSS_JWT_JWKS_URL"] == f"{idp.address}/jwks" and env["HSS_JWT_ISSUER"] == idp.address
        app = f"{dev.gateway().address}/app/"
        assert httpx.get(f"{app}sign-in.json", timeout=10).json() == {"issuer": idp.address, "client_id": CLIENT_ID}
        idp.write_users([Account("wang", "pw-1", "王老师", ("teacher",), "/620400/620402/s0001", staff_id="T1")])

        verifier = secrets.token_urlsafe(48)
        code = _code_flow(idp, app, "wang", "pw-1", verifier)
        grant = {"grant_type": "authorization_code", "code": code, "redirect_uri": app, "client_id": CLIENT_ID}
        without = httpx.post(f"{idp.address}/token", data=grant, timeout=10)
        assert without.status_code == 400, "PKCE is required: no code without its verifier"
        code = _code_flow(idp, app, "wang", "pw-1", verifier)
        answer = httpx.post(f"{idp.address}/token", data={**grant, "code": code, "code_verifier": verifier}, timeout=10)
        token = answer.raise_for_status().json()["access_token"]

        class Production(ServiceSettings):
            service_name = "p"

        settings = Production(env="production", jwt_jwks_url=f"{idp.address}/jwks", jwt_issuer=idp.address)
        who = asyncio.run(Verifier(settings).verify(token))
        assert (who.subject, who.roles, who.org_path, who.staff_id) == (
            "idp-wang",
            frozenset({Role.TEACHER}),
            "/620400/620402/s0001",
            "T1",
        )
        dev.down()
        assert idp.pid() is None and not port_open("127.0.0.1", idp.port)
    finally:
        dev.down()
