"""The gateway for frontends (nginx, deploy/gateway/): one origin in front of every replica of the four services."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

from shared.devstack.component import (
    DevstackError,
    LocalProcess,
    http_get,
    npm_step,
    require_free,
    start_and_wait,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "deploy" / "gateway"
DEFAULT_PORT = 8100
# Requests per second per client (bearer token) and per address: deploy/gateway/nginx.conf's production values.
RATES = ("20r/s", "200r/s")
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
# Browser frontends served from the developer's own machine may call the API (any port of localhost).
DEV_CORS_ORIGINS = r"~^http://(localhost|127\.0\.0\.1)(:[0-9]+)?$ $http_origin;"


def nginx_binary() -> str:
    """The nginx executable (Debian's nginx-light, installed by scripts/setup-system.sh)."""
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if found is None:
        raise DevstackError("the gateway needs nginx: apt-get install nginx-light (scripts/setup-system.sh does)")
    return found


def docs_root() -> Path | None:
    """The folder holding docs/ (Swagger UI, built once by scripts/gateway-docs.sh); None without npm."""
    return npm_step("gateway-docs.sh", what="building the gateway's /docs")


def app_root() -> Path | None:
    """The built frontends (frontends/, scripts/frontend.sh: cached per source digest); None without npm."""
    return npm_step("frontend.sh", "build", what="building the frontends", keep=3000)


class Gateway(LocalProcess):
    """nginx with deploy/gateway/http.conf and locations.conf, and upstreams listing every service replica.

    `upstreams` maps each service to the ports of its replicas; `rates` are the per-client and per-address limits
    (tests set tiny ones); the main file is written to <state>/gateway/.
    """

    name = "gateway"
    env_var = "GATEWAY_URL"

    def __init__(
        self, state_dir: Path, port: int, upstreams: dict[str, list[int]], rates: tuple[str, str] = RATES
    ) -> None:
        super().__init__(port, state_dir / "gateway", "error.log")
        self.upstreams = upstreams
        self.rates = rates
        self.conf = self.root / "nginx.conf"
        self.www = self.root / "www"  # nginx's root: docs/ and app/ (links to the built folders), dev-users.json

    @property
    def marker(self) -> str:
        return str(self.conf)

    def write_dev_users(self, users: list[dict[str, str]]) -> None:
        """Development sign-in: the demo users the app at /app/ offers (each with a dev token); never in production."""
        self.www.mkdir(parents=True, exist_ok=True)
        path = self.www / "dev-users.json"
        path.write_text(json.dumps(users, ensure_ascii=False), encoding="utf-8")
        path.chmod(0o600)  # tokens: the owner only (nginx workers run as the same user)

    def write_sign_in(self, config: dict[str, str] | None) -> None:
        """The identity provider the app's sign-in uses (issuer, client_id), served at /app/sign-in.json (None:
        none, the file removed)."""
        self.www.mkdir(parents=True, exist_ok=True)
        path = self.www / "sign-in.json"
        if config is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(json.dumps(config), encoding="utf-8")

    def link_www(self, docs: Path | None, app: Path | None) -> None:
        """nginx's root: docs/ (Swagger UI) and app/ (the frontends) as links to their cached builds."""
        self.www.mkdir(parents=True, exist_ok=True)
        for name, target in (("docs", docs / "docs" if docs else None), ("app", app)):
            link = self.www / name
            if link.is_symlink() or link.exists():
                link.unlink()
            if target is not None:
                link.symlink_to(target, target_is_directory=True)

    def render(self) -> str:
        """The main nginx file: process settings, the shared http.conf and locations.conf, the upstreams."""
        d = self.root
        upstreams = "".join(
            f"    upstream hss_{name} {{\n"
            + "".join(f"        server 127.0.0.1:{port};\n" for port in ports)
            + "        keepalive 16;\n    }\n"
            for name, ports in self.upstreams.items()
        )
        # As root, workers would run as `nobody`, who may not enter a state folder or cache under /root.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return (
            "# Written by devstack (shared/devstack/gateway.py) on every start: edit deploy/gateway/ instead.\n"
            f"{user}daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n"
            "events {\n    worker_connections 1024;\n}\n"
            "http {\n"
            + "".join(f"    {kind}_temp_path {d}/tmp/{kind};\n" for kind in TEMP_PATHS)
            + f"    include {CONF_DIR}/http.conf;\n"
            f"    access_log {d}/access.log hss;\n"
            f"    limit_req_zone $hss_client zone=hss_per_client:20m rate={self.rates[0]};\n"
            f"    limit_req_zone $binary_remote_addr zone=hss_per_address:10m rate={self.rates[1]};\n"
            f"{upstreams}"
            "    server {\n"
            f"        listen 127.0.0.1:{self.port};\n"
            f"        root {self.www};\n"
            f"        include {CONF_DIR}/locations.conf;\n"
            "    }\n"
            "}\n"
        )

    def write_config(self) -> None:
        """Write nginx.conf and cors-origins.map (nginx resolves the map's include next to nginx.conf)."""
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        (self.root / "cors-origins.map").write_text(DEV_CORS_ORIGINS + "\n")
        self.link_www(docs_root(), app_root())
        self.conf.write_text(self.render())
        check = subprocess.run(
            [nginx_binary(), "-t", "-q", "-c", str(self.conf), "-p", str(self.root)],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            raise DevstackError(f"gateway configuration refused by nginx -t:\n{check.stderr[-2000:]}")

    def start(self) -> None:
        require_free(self.port, "gateway", "set GATEWAY_HTTP_PORT")
        self.write_config()
        argv = [nginx_binary(), "-c", str(self.conf), "-p", str(self.root)]
        start_and_wait(argv, self.root / "nginx.out", self.pid_file, self.answers, 30, "gateway", self.log)

    def reload(self) -> None:
        """Rewrite the configuration (e.g. another number of replicas) and have the running nginx load it."""
        pid = self.pid()
        if pid is None:
            self.start()
            return
        self.write_config()
        os.kill(pid, signal.SIGHUP)  # nginx starts new workers with the new file, old ones finish their requests

    def ensure(self) -> None:
        self.reload()

    def answers(self) -> bool:
        return http_get(self.address + "/healthz") is not None
