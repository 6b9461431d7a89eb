"""A local OpenID Connect provider (frontends/idp/server.mjs, oidc-provider) for development and the browser tests:
the app's sign-in by authorization code + PKCE; the services verify its ES256 access tokens with its JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from shared.devstack.component import (
    DevstackError,
    LocalProcess,
    http_get,
    npm_step,
    port_open,
    require_free,
    start_and_wait,
    wait_until,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER = REPO_ROOT / "frontends" / "idp" / "server.mjs"
DEFAULT_PORT = 9000
CLIENT_ID = "hss-app"  # the app, a public client (no secret: the code is bound to it by PKCE)


@dataclass(frozen=True)
class Account:
    """A user of the provider, with the claims its access tokens carry (shared/auth.py reads them)."""

    username: str
    password: str
    name: str
    roles: tuple[str, ...]
    org_path: str
    staff_id: str | None = None
    department: str | None = None

    @property
    def sub(self) -> str:
        return f"idp-{self.username}"

    def record(self) -> dict[str, object]:
        """The users file's entry: the password as a salted scrypt hash (server.mjs checks it)."""
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(self.password.encode(), salt=salt, n=16384, r=8, p=1, dklen=32)
        hashed = f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
        entry: dict[str, object] = {
            "sub": self.sub,
            "username": self.username,
            "password": hashed,
            "name": self.name,
            "roles": list(self.roles),
            "org_path": self.org_path,
        }
        entry |= {k: v for k, v in (("staff_id", self.staff_id), ("department", self.department)) if v}
        return entry


def idp_deps() -> Path:
    """The folder holding the provider's node_modules (pinned by frontends/idp/package-lock.json, cached)."""
    folder = npm_step("frontend.sh", "idp-deps", what="installing the identity provider's packages")
    if folder is None:
        raise DevstackError("the identity provider needs Node.js and npm (scripts/setup-system.sh installs them)")
    return folder


class IdentityProvider(LocalProcess):
    """`node server.mjs` on 127.0.0.1:<port>, its users file, signing key and log in <state>/idp/.

    `redirect_uris` are the app's addresses (`<gateway>/app/`) the provider may send a code to.
    """

    name = "idp"
    env_var = "IDP_ISSUER"

    def __init__(self, state_dir: Path, port: int, redirect_uris: list[str]) -> None:
        super().__init__(port, state_dir / "idp", "idp.log")
        self.redirect_uris = redirect_uris
        self.users_file = self.root / "users.json"

    @property
    def marker(self) -> str:
        return str(self.root / "server.mjs")

    def service_env(self) -> dict[str, str]:
        """What the services need to accept this provider's tokens."""
        return {"HSS_JWT_ISSUER": self.address, "HSS_JWT_JWKS_URL": f"{self.address}/jwks"}

    def app_config(self) -> dict[str, str]:
        """The app's sign-in settings (the gateway serves them at /app/sign-in.json)."""
        return {"issuer": self.address, "client_id": CLIENT_ID}

    def write_users(self, accounts: list[Account]) -> None:
        """The provider's users (read again at each sign-in: no restart needed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.users_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([a.record() for a in accounts], ensure_ascii=False), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(self.users_file)

    def start(self) -> None:
        require_free(self.port, "identity provider", "set IDP_HTTP_PORT")
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.users_file.exists():
            self.write_users([])
        # ES modules resolve packages from the script's folder: a copy of the script beside the cached packages.
        shutil.copyfile(SERVER, self.root / "server.mjs")
        modules = self.root / "node_modules"
        if modules.is_symlink() or modules.exists():
            modules.unlink()
        modules.symlink_to(idp_deps() / "node_modules", target_is_directory=True)
        env = {
            **os.environ,
            "IDP_HTTP_PORT": str(self.port),
            "IDP_ISSUER": self.address,
            "IDP_USERS": str(self.users_file),
            "IDP_KEY_FILE": str(self.root / "signing-key.json"),
            "IDP_CLIENT_ID": CLIENT_ID,
            "IDP_REDIRECT_URIS": ",".join(self.redirect_uris),
        }
        argv = [shutil.which("node") or "node", str(self.root / "server.mjs")]
        start_and_wait(argv, self.log, self.pid_file, self.answers, 30, "identity provider", self.log, env=env)

    def stop(self) -> None:
        running = self.pid() is not None
        super().stop()
        if running:
            # Node's main thread can show as exited while its other threads still hold the listening socket.
            wait_until(lambda: not port_open("127.0.0.1", self.port), 10, "identity provider's port", lambda: True)

    def answers(self) -> bool:
        return http_get(self.address + "/.well-known/openid-configuration") is not None
