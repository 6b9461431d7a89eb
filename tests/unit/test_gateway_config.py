"""The gateway's nginx files (deploy/gateway/): routes against the services' OpenAPI documents, body caps against
the services' own, and `nginx -t` on the production main file and on the one devstack writes."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.committees.api.imports import MAX_FILE_BYTES, MAX_JSON_BYTES
from services.visits.schemas import BATCH_MAX_BYTES
from shared.devstack.gateway import CONF_DIR, Gateway, nginx_binary
from shared.devstack.services import SERVICES
from shared.settings import ServiceSettings

LOCATION = re.compile(r"^location\s+(=|~)?\s*(\S+)\s*\{(.*?)^\}", re.M | re.S)
SIZES = {"k": 1024, "m": 1024 * 1024}


@dataclass(frozen=True)
class Location:
    kind: str  # "=", "~" or "" (prefix)
    pattern: str
    body: str

    def matches(self, path: str) -> bool:
        if self.kind == "=":
            return path == self.pattern
        if self.kind == "~":
            return re.search(self.pattern, path) is not None
        return path.startswith(self.pattern)

    @property
    def upstream(self) -> str | None:
        found = re.search(r"proxy_pass http://(hss_\w+)", self.body)
        return found.group(1) if found else None

    @property
    def max_body(self) -> int | None:
        found = re.search(r"client_max_body_size (\d+)([km]?);", self.body)
        return int(found.group(1)) * SIZES.get(found.group(2), 1) if found else None


def locations() -> list[Location]:
    text = (CONF_DIR / "locations.conf").read_text(encoding="utf-8")
    return [Location(kind or "", pattern, body) for kind, pattern, body in LOCATION.findall(text)]


def route(path: str) -> Location:
    """The location nginx picks: an exact match, else the first matching regex, else the longest prefix."""
    locs = locations()
    for loc in locs:
        if loc.kind == "=" and loc.matches(path):
            return loc
    for loc in locs:
        if loc.kind == "~" and loc.matches(path):
            return loc
    return max((loc for loc in locs if loc.kind == "" and loc.matches(path)), key=lambda loc: len(loc.pattern))


def api_paths() -> dict[str, list[str]]:
    """Each service's OpenAPI paths, parameters filled in."""
    out = {}
    for name in SERVICES:
        app = importlib.import_module(f"services.{name}.app").create()
        out[name] = [re.sub(r"\{[^}]+\}", "x1", path) for path in app.openapi()["paths"]]
    return out


def server_max_body() -> int:
    text = (CONF_DIR / "locations.conf").read_text(encoding="utf-8")
    found = re.search(r"^client_max_body_size (\d+)m;", text, re.M)
    assert found
    return int(found.group(1)) * SIZES["m"]


def test_every_api_path_of_every_service_goes_to_that_service() -> None:
    paths = api_paths()
    for name, service_paths in paths.items():
        assert service_paths, name
        for path in service_paths:
            assert route(path).upstream == f"hss_{name}", f"{path} of {name} goes to {route(path).upstream}"


def test_every_routed_segment_is_served_by_some_service() -> None:
    """No stale route: each first segment the gateway sends somewhere begins a path of that service."""
    paths = api_paths()
    for loc in locations():
        group = re.match(r"\^/api/v1/\(([^)]*)\)", loc.pattern) if loc.kind == "~" else None
        if group is None or loc.upstream is None:
            continue
        service = loc.upstream.removeprefix("hss_")
        for segment in group.group(1).split("|"):
            assert any(p.startswith(f"/api/v1/{segment}") for p in paths[service]), f"{segment} of {service}"


def test_unknown_paths_and_the_services_internal_endpoints_are_not_routed() -> None:
    for path in ("/api/v1/nothing", "/metrics", "/healthz/x", "/visits/metrics", "/api/v1/audit/reads"):
        assert route(path).upstream is None, path
    assert "proxy_pass http://hss_$1/$2;" in route("/visits/openapi.json").body


def test_body_caps_are_the_services_own() -> None:
    assert server_max_body() == ServiceSettings().http_max_body_bytes
    assert route("/api/v1/imports").max_body == MAX_JSON_BYTES
    assert route("/api/v1/imports/x1/files/students").max_body == MAX_FILE_BYTES
    assert route("/api/v1/visits/batch").max_body == BATCH_MAX_BYTES
    assert route("/api/v1/visits").max_body is None  # the default
    assert route("/api/v1/imports/csv").max_body is None


def nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nginx_binary(), "-t", "-c", str(conf), "-p", str(prefix)], capture_output=True, text=True, check=False
    )


def test_devstack_main_file_passes_nginx_t_with_every_replica(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path, 18100, {name: [9001 + i, 9011 + i] for i, name in enumerate(SERVICES)})
    gateway.write_config()  # runs nginx -t itself and raises on a refusal
    text = gateway.conf.read_text()
    assert "server 127.0.0.1:9002;" in text and "server 127.0.0.1:9012;" in text  # visits#1 and visits#2
    assert "rate=20r/s" in text


def test_production_main_file_passes_nginx_t_with_tls(tmp_path: Path) -> None:
    """deploy/gateway/nginx.conf as the image lays it out, with compose's tls.conf; only the upstream host names
    (which resolve in compose and Kubernetes, not here) are replaced by loopback addresses."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    (tmp_path / "hss").mkdir()
    (tmp_path / "hss.d").mkdir()
    for name in ("http.conf", "locations.conf"):
        shutil.copy(CONF_DIR / name, tmp_path / "hss" / name)
    upstreams = (CONF_DIR / "upstreams.conf").read_text(encoding="utf-8")
    (tmp_path / "hss" / "upstreams.conf").write_text(re.sub(r"server \w+:", "server 127.0.0.1:", upstreams))
    shutil.copy(CONF_DIR / "cors-origins.map", tmp_path / "cors-origins.map")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt")],
        capture_output=True, check=True,
    )  # fmt: skip
    tls = (CONF_DIR / "tls.conf").read_text(encoding="utf-8").replace("/etc/nginx/tls", str(tmp_path))
    (tmp_path / "hss.d" / "tls.conf").write_text(tls)
    main = (CONF_DIR / "nginx.conf").read_text(encoding="utf-8").replace("/tmp/", f"{tmp_path}/")
    (tmp_path / "nginx.conf").write_text(main)

    result = nginx_test(tmp_path / "nginx.conf", tmp_path)

    assert result.returncode == 0, result.stderr
