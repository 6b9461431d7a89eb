"""A private PostgreSQL 15 cluster made with initdb and run with pg_ctl."""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import asyncpg

from shared.db import SERVICE_ROLE, service_database_url
from shared.devstack.component import (
    Component,
    DevstackError,
    pid_alive,
    read_pid,
    require_free,
    run_coro,
    tail,
)

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)
SUPERUSER = "hss"
# The services log in as this role, a member of shared.db.SERVICE_ROLE: no DDL, the audit log append-only. The
# migrations run before each service process as the owner (the URL's own user), as a Kubernetes init container does.
SERVICE_LOGIN = "hss_app"
# initdb and postgres refuse to run as root; this system user owns the cluster instead.
SERVICE_USER = "hss-pg"


def _pg_bin() -> Path:
    """Folder holding initdb/pg_ctl: PG_BIN env, the Debian path, or whatever is on PATH."""
    candidates = [os.environ.get("PG_BIN", ""), *PG_BIN_CANDIDATES]
    for folder in candidates:
        if folder and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise DevstackError("PostgreSQL binaries not found; set PG_BIN to the folder holding pg_ctl")


def _service_account() -> pwd.struct_passwd:
    """The non-root account to run PostgreSQL as, created on first use."""
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    result = subprocess.run(
        [
            *(useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"),
            *("--shell", "/usr/sbin/nologin", SERVICE_USER),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0 or "already exists" in result.stderr:
        return pwd.getpwnam(SERVICE_USER)
    # No useradd (minimal images): borrow an existing unprivileged account.
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise DevstackError(f"running as root and cannot create user {SERVICE_USER}: {result.stderr.strip()}")


def _traversable_by_others(path: Path) -> bool:
    """True when an account that is neither owner nor group member can enter every existing folder up to `path`."""
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents) if p.exists())


def cluster_home(state_dir: Path) -> Path:
    """Where the cluster and its log live: `state_dir`, or, when we run as root and the service account cannot
    reach it (a clone under /root, mode 700), a folder under /var/tmp named after it (kept across reboots)."""
    if os.geteuid() != 0 or _traversable_by_others(state_dir):
        return state_dir
    return Path("/var/tmp") / f"hss-devstack-{hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]}"


class Postgres(Component):
    """PostgreSQL cluster under <state>/postgres, superuser `hss`, trust auth on 127.0.0.1."""

    name = "postgres"
    env_var = "DATABASE_URL"

    def __init__(self, state_dir: Path, port: int) -> None:
        self.port = port
        home = cluster_home(state_dir)
        self.root = home / "postgres"
        self.data = self.root / "data"
        self.log = home / "logs" / "postgres.log"
        # Unix socket paths are limited to ~107 bytes, so fall back to /tmp for deep checkouts.
        self.socket_dir = self.root / "run"
        if len(str(self.socket_dir)) > 90:
            self.socket_dir = Path("/tmp") / f"hss-devstack-pg-{port}"

    @functools.cached_property
    def _account(self) -> pwd.struct_passwd | None:
        """The account postgres runs as when we are root (resolved lazily: may create a user)."""
        return _service_account() if os.geteuid() == 0 else None

    @property
    def address(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def pid(self) -> int | None:
        pid = read_pid(self.data / "postmaster.pid")
        # The data dir is on the postmaster's command line, so a recycled pid never matches.
        return pid if pid is not None and pid_alive(pid, str(self.data)) else None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool, as the service account when we are root."""
        result = self._exec([str(_pg_bin() / args[0]), *args[1:]])
        if check and result.returncode != 0:
            raise DevstackError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{tail(self.log)}")
        return result

    def _exec(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        """Run `argv`, dropping to the service account when we are root."""
        account = self._account
        return subprocess.run(
            argv,
            cwd=self.root,  # the service account may not be able to enter the caller's cwd
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            start_new_session=True,  # keep the postmaster out of the caller's Ctrl-C
            user=account.pw_uid if account else None,
            group=account.pw_gid if account else None,
            extra_groups=[] if account else None,
        )

    def _own(self, *paths: Path) -> None:
        """Hand folders/files to the service account so postgres may write them."""
        if self._account is not None:
            for path in paths:
                os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _prepare(self) -> None:
        """Create the folders, the log file and (first time only) the cluster."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        self._own(self.root, self.socket_dir, self.log)
        if self._account is not None:
            # Every parent folder must be enterable by the service account, or initdb fails obscurely.
            if self._exec(["test", "-w", str(self.root)]).returncode != 0:
                raise DevstackError(
                    f"user {self._account.pw_name} cannot use {self.root}: a parent folder is not "
                    "traversable for other users; set DEVSTACK_DIR to a folder under /tmp"
                )
        if (self.data / "PG_VERSION").exists():
            return
        if self.data.exists():
            shutil.rmtree(self.data)  # a half-made cluster from an interrupted initdb
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--no-locale",
            "--auth=trust",
            "--no-sync",  # throw-away dev data; fsync stays on for the running server
        )
        # Only TCP on loopback and the private socket; nothing else may connect.
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n", encoding="utf-8"
        )
        self._own(self.data / "pg_hba.conf")

    def start(self) -> None:
        require_free(self.port, "postgres", "set DEVSTACK_PG_PORT or DATABASE_URL")
        self._prepare()
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.socket_dir}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=300",
                "-c max_locks_per_transaction=256",  # as deployed: a directory poll locks ~8,000 entities
                "-c shared_buffers=256MB",
                "-c fsync=on",
                "-c shared_preload_libraries=pg_stat_statements",  # per-statement time, for benches and ops
                "-c log_timezone=UTC",
                "-c timezone=UTC",
            ]
        )
        data, log = str(self.data), str(self.log)
        self._run("pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")
        if not self.answers():
            raise DevstackError(f"postgres started but does not accept connections\n{tail(self.log)}")

    def stop(self) -> None:
        if self.pid() is None:
            return
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop", check=False)
        if self.pid() is not None:
            raise DevstackError(f"postgres did not stop\n{tail(self.log)}")

    def answers(self) -> bool:
        return probe_postgres(self.address)


def probe_postgres(url: str) -> bool:
    """True if asyncpg can connect to `url` and run a query."""

    async def check() -> bool:
        try:
            conn = await asyncpg.connect(url, timeout=3)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
        try:
            return bool(await conn.fetchval("select 1") == 1)
        finally:
            await conn.close()

    return run_coro(check)


def service_url(url: str) -> str:
    """The same database as `url`, logged in as the services' role (no password: trust on loopback, as here)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{SERVICE_LOGIN}@{host}"))


def ensure_service_roles(url: str) -> None:
    """Create the services' group role and login role in the cluster of `url` (its user may create roles)."""

    async def create() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for role, options in ((SERVICE_ROLE, "NOLOGIN"), (SERVICE_LOGIN, f"LOGIN IN ROLE {SERVICE_ROLE}")):
                if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                    try:
                        await conn.execute(f"CREATE ROLE {role} {options}")
                    except asyncpg.DuplicateObjectError:
                        pass  # another stack on the same cluster made it meanwhile
        finally:
            await conn.close()

    run_coro(create)


def ensure_service_databases(url: str, services: Iterable[str]) -> None:
    """Create each service's own database (`shared.db.service_database_url`) in the cluster of `url`, owned by the
    URL's user, as deploy/postgres/init.sql does in production. On a cluster devstack did not start that user needs
    CREATEDB, or the databases must exist already (then nothing is asked of it but to connect)."""

    async def create() -> None:
        names = [urllib.parse.urlsplit(service_database_url(url, s)).path.lstrip("/") for s in services]
        conn = await asyncpg.connect(url, timeout=10)
        try:
            have = {r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname = ANY($1)", names)}
            for name in names:
                if name in have:
                    continue
                try:
                    await conn.execute(f'CREATE DATABASE "{name}"')
                except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
                    pass  # another process made it meanwhile
                except asyncpg.InsufficientPrivilegeError as exc:
                    raise DevstackError(
                        f"database {name!r} does not exist and the user of DATABASE_URL may not create it ({exc}); "
                        f"create the databases {', '.join(names)} on that server, or grant the user CREATEDB"
                    ) from exc
        finally:
            await conn.close()

    run_coro(create)
