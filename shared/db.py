"""asyncpg pool per service schema, and the migrations runner."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeAlias

import asyncpg
import orjson

log = logging.getLogger(__name__)

KIT_MIGRATIONS = Path(__file__).parent / "migrations"

# What a store function runs its statements on: one connection (inside a transaction) or the pool (one-off reads).
Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# Errors that mean "the database is unreachable right now", not "the request is wrong".
DB_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InterfaceError,  # e.g. "connection is closed"
    asyncpg.OperatorInterventionError,  # 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    OSError,
    TimeoutError,  # a pool acquire or a command that timed out
)

# SQLSTATEs of errors that go away when the same work is simply tried again: serialization failure, deadlock,
# lock not available (lock_timeout), query canceled (statement_timeout), admin/crash shutdown, cannot connect now,
# too many connections. Class 08 (connection exceptions) is matched by prefix.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300"})


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` says "try again later" (outage, deadlock, timeout) rather than "this work is wrong"."""
    if isinstance(exc, DB_UNAVAILABLE):
        return True
    state = getattr(exc, "sqlstate", None)
    return (
        isinstance(exc, asyncpg.PostgresError)
        and isinstance(state, str)
        and (state in TRANSIENT_SQLSTATES or state.startswith("08"))
    )


def is_timeout(exc: BaseException) -> bool:
    """Whether `exc` is a statement or client-side command timeout (work that may succeed in smaller parts)."""
    return isinstance(exc, TimeoutError | asyncpg.QueryCanceledError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    """Decode json/jsonb to Python objects on every pooled connection."""
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def _reset(conn: asyncpg.Connection) -> None:
    """On release: roll back a transaction left open, without asyncpg's default reset query per request."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def server_settings(schema: str) -> dict[str, str]:
    """Session settings of every service connection.

    `plan_cache_mode`: asyncpg prepares every statement and PostgreSQL switches a prepared statement to a generic
    plan after five runs. A generic plan made while a table was nearly empty (a fresh service, a new campaign)
    scans the whole table for `id = ANY($1)` and is kept while the table grows: measured 13.6 ms instead of
    0.7 ms per call at 18,000 rows. Planning each run with its actual parameters costs a fraction of a millisecond.

    `jit`: JIT compilation pays off only for long analytic queries; for the services' statements it is pure cost.
    On reporting's refresh, whose statements are large, it added about a second of compiling per statement.
    """
    return {
        "search_path": f'"{schema}",public',
        "application_name": schema,
        "plan_cache_mode": "force_custom_plan",
        "jit": "off",
    }


def keepalive_settings(seconds: int) -> dict[str, str]:
    """Server-side TCP keepalive and user timeout so PostgreSQL drops a session whose client vanished.

    A session whose host died without closing its socket (power loss, a network partition) otherwise keeps its
    locks until the kernel gives up, which takes hours: the relay's advisory lock would keep every standby idle.
    """
    interval = max(1, seconds // 5)
    return {
        "tcp_keepalives_idle": str(max(1, seconds - 3 * interval)),
        "tcp_keepalives_interval": str(interval),
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": str(seconds * 1000),
    }


def _client_keepalive(conn: asyncpg.Connection, seconds: int) -> None:
    """The same on our side of the socket, so a leader cut off from PostgreSQL notices it within `seconds`."""
    # asyncpg exposes no socket options; the transport's socket is the documented asyncio way to reach them.
    sock = conn._transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket has no TCP keepalive (and never loses its peer silently)
    interval = max(1, seconds // 5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", max(1, seconds - 3 * interval)),
        ("TCP_KEEPINTVL", interval),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", seconds * 1000),
    ):
        if hasattr(socket, name):  # Linux names; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def service_database_url(cluster_url: str, service: str) -> str:
    """The URL of `service`'s own database on the cluster `cluster_url` names: the same user, host and options, the
    database named after the service. One database per service, as in production (deploy/postgres/init.sql): a
    snapshot held open in one service's database (reporting's repeatable-read refresh) does not keep the rows
    another service deleted alive for its reads (the horizon of an ordinary table counts only the backends of its own
    database, PostgreSQL 14 on)."""
    parts = urllib.parse.urlsplit(cluster_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{service}"))


async def connect(dsn: str, schema: str, *, keepalive_seconds: int | None = None) -> asyncpg.Connection:
    """A single connection inside `schema` (for long-lived LISTEN/lock holders such as the relay).

    With `keepalive_seconds`, both ends drop the connection within about that long after the peer vanished.
    """
    settings = server_settings(schema)
    if keepalive_seconds:
        settings |= keepalive_settings(keepalive_seconds)
    conn = await asyncpg.connect(dsn, server_settings=settings)
    if keepalive_seconds:
        _client_keepalive(conn, keepalive_seconds)
    await _init_connection(conn)
    return conn


class Pool(asyncpg.Pool):
    """asyncpg's pool whose `acquire` gives up after `acquire_timeout` seconds (a TimeoutError, answered 503).

    Without it a request waits for a connection as long as its client does, while every connection hangs on an
    unreachable database: the client sees its own timeout or a dropped connection, not a problem+json 503.
    """

    acquire_timeout: float | None = None

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 2, max_size: int = 10, acquire_timeout: float = 10.0
) -> asyncpg.Pool:
    """A pool whose connections work inside `schema` (made by `migrate`)."""
    pool = Pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        reset=_reset,
        server_settings=server_settings(schema),
        command_timeout=30,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        loop=None,
    )
    pool.acquire_timeout = acquire_timeout
    await pool
    return pool


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def xact_lock(conn: asyncpg.Connection, name: str) -> None:
    """Wait for the transaction-scoped advisory lock of `name` (one such transaction at a time)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(name))


async def xact_lock_many(conn: asyncpg.Connection, names: Iterable[str]) -> None:
    """Wait for the transaction-scoped advisory locks of many names, each once, in the order of their keys (so two
    transactions locking overlapping sets cannot deadlock). The keys are `lock_key`'s, computed in the database: the
    names go as one JSON array (a poll of a copy locks thousands; hashing and encoding them one by one in Python
    cost more than the locks)."""
    unique = list(set(names))
    if unique:
        # Volatile functions of the select list run after the ORDER BY, row by row: the locks are taken in order.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT"
            " ('x' || encode(substring(sha256(convert_to(n, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint AS k"
            " FROM json_array_elements_text($1::text::json) AS n) AS keys ORDER BY k",
            orjson.dumps(unique).decode(),
        )


async def try_xact_lock(conn: asyncpg.Connection, name: str) -> bool:
    """Take the transaction-scoped advisory lock of `name` if no other transaction holds it; whether it was taken
    (one instance of a periodic pass at a time)."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock_key(name)))


async def migrate(dsn: str, schema: str, *dirs: Path, lock_timeout: float = 5.0, attempts: int = 60) -> list[str]:
    """Create `schema` and apply the ordered `NNN_name.sql` files of `dirs` not yet applied.

    On its own connection, without the pools' command timeout (a migration may take long), under an advisory lock
    so replicas starting together migrate once, one after the other. The DDL runs with `lock_timeout`: a
    migration waiting behind a long query on its table would otherwise queue every other query behind itself; it
    gives up, releases everything and tries again after a pause.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await _migrate_once(dsn, schema, dirs, lock_timeout)
        except asyncpg.LockNotAvailableError:
            if attempt == attempts:
                raise
            log.warning("migration waits for a lock, retrying", extra={"schema": schema, "attempt": attempt})
            await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
    raise AssertionError("unreachable")


def _migrations(dirs: tuple[Path, ...]) -> list[tuple[str, Path]]:
    """Every migration of `dirs` in the order it applies, by its recorded name (`<folder>/<file>`)."""
    return [(f"{d.parent.name}/{path.name}", path) for d in dirs for path in sorted(d.glob("*.sql"))]


async def require_migrated(dsn: str, schema: str, *dirs: Path) -> None:
    """Refuse to start (RuntimeError) while a migration of `dirs` is not applied in `schema`.

    For a service that does not migrate at start (`db_migrate_at_start` false): its role has no DDL rights, the
    migrations are run before it as the owner (`python -m services.<name> migrate`).
    """
    conn = await asyncpg.connect(dsn, server_settings=server_settings(schema))
    try:
        table = await conn.fetchval("SELECT to_regclass('schema_migrations')")
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")} if table else set()
    finally:
        await conn.close(timeout=5)
    pending = [name for name, _ in _migrations(dirs) if name not in done]
    if pending:
        raise RuntimeError(
            f"schema {schema!r} lacks migrations {pending}: run `python -m services.<name> migrate` as its owner first"
        )


# The group role every service's login role belongs to (deploy/postgres/, devstack). Where it exists, each migration
# run grants it what serving needs and nothing more: no DDL (it owns nothing), no writes to the migrations' record,
# and on the audit log only reading and appending (rows leave through audit_purge, run with its owner's rights).
SERVICE_ROLE = "hss_service"


async def _grant_service_role(conn: asyncpg.Connection, schema: str) -> None:
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", SERVICE_ROLE):
        return
    async with conn.transaction():
        await conn.execute(
            f'GRANT USAGE ON SCHEMA "{schema}" TO {SERVICE_ROLE};'
            f' GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO {SERVICE_ROLE};'
            f' GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO {SERVICE_ROLE};'
            f" REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM {SERVICE_ROLE}"
        )
        if await conn.fetchval("SELECT to_regclass('audit_reads')"):
            await conn.execute(
                f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_reads FROM {SERVICE_ROLE};"
                " REVOKE ALL ON FUNCTION audit_purge(interval) FROM PUBLIC;"
                f" GRANT EXECUTE ON FUNCTION audit_purge(interval) TO {SERVICE_ROLE}"
            )


async def _migrate_once(dsn: str, schema: str, dirs: tuple[Path, ...], lock_timeout: float) -> list[str]:
    applied: list[str] = []
    conn = await asyncpg.connect(dsn, server_settings=server_settings(schema))
    try:
        key = lock_key(f"migrate:{schema}")
        # Session lock, waited for without lock_timeout: another replica may be in the middle of a long migration.
        await conn.execute("SELECT pg_advisory_lock($1)", key)
        await conn.execute(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")}
        for name, path in _migrations(dirs):
            sql = path.read_text()
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if name in done:
                if done[name] != checksum:
                    log.warning("migration changed after it was applied", extra={"migration": name})
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations(name, checksum) VALUES ($1, $2)", name, checksum)
            applied.append(name)
            log.info("migration applied", extra={"migration": name, "schema": schema})
        await _grant_service_role(conn, schema)
    finally:
        # Closing the session releases the advisory lock too, also when the connection broke.
        await conn.close(timeout=5)
    return applied


class Params(list[Any]):
    """The parameters of a statement composed from the conditions that apply: `p.add(value)` keeps the value and
    answers its placeholder (`$n`). A list with optional filters states only the filters given, rather than one
    statement with `($n IS NULL OR col = $n)` for each: PostgreSQL's generic plan of such a catch-all cannot use an
    index for a filter or a keyset cursor, so once it takes over (after five executions) every page reads and sorts
    all the rows the other conditions select."""

    def add(self, value: Any) -> str:
        self.append(value)
        return f"${len(self)}"

    def conditions(self, *filters: tuple[str, Any]) -> list[str]:
        """The filters whose value is given (not None), each template's `{}` filled with its value's placeholder; a
        tuple fills one `{}` per item: `p.conditions(("level = {}", level), ("(a, b) > ({}, {})", after))`."""
        return [
            template.format(*(self.add(v) for v in (value if isinstance(value, tuple) else (value,))))
            for template, value in filters
            if value is not None
        ]


async def fetch_page(
    conn: Conn, select: str, p: Params, where: Sequence[str], order: str, limit: int
) -> list[asyncpg.Record]:
    """A page of a list: `select` (its columns and FROM) with the conditions `where` (none: every row), in `order`,
    `limit` rows, the parameters `p` (the conditions' and then the limit's)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"{select} WHERE {' AND '.join(where) or 'true'} ORDER BY {order} LIMIT {p.add(limit)}", *p
    )
    return rows


def columns(rows: Sequence[Any], *keys: str | int) -> list[list[Any]]:
    """The rows' values column by column, one list per key (a mapping row's name or a tuple row's index): the
    parameters of a set-based statement over `unnest($1::text[], $2::text[], ...)`."""
    return [[row[k] for row in rows] for k in keys]


def copy_text(value: str) -> str:
    """A value in COPY's text format: backslash, tab, newline and carriage return escaped."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_field(value: Any) -> str:
    if value.__class__ is str:
        return copy_text(value)
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, list | tuple):  # a one-dimensional array of text: every element quoted
        quoted = ('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in value)
        return copy_text("{" + ",".join(quoted) + "}")
    if isinstance(value, date):
        return value.isoformat()
    return copy_text(str(value))


_ESCAPED = ("\\", "\t", "\n", "\r")


def _copy_column(values: list[Any]) -> list[str]:
    """One column's values as COPY text fields (`_copy_field` of each), a column at a time: text and NULLs, and
    booleans, in list passes; text is escaped only when some value of the column holds a character to escape."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        nulls = type(None) in kinds
        texts = [v for v in values if v is not None] if nulls else values
        joined = "".join(texts)
        if any(c in joined for c in _ESCAPED):
            values = [None if v is None else copy_text(v) for v in values]
        return ["\\N" if v is None else v for v in values] if nulls else values
    if kinds == {bool}:
        return ["t" if v else "f" for v in values]
    if kinds == {date}:
        return list(map(date.isoformat, values))
    return list(map(_copy_field, values))


def copy_columns(columns: Sequence[list[Any]]) -> bytes:
    """Rows given column by column (`columns`) as COPY text-format data, the same bytes as `copy_rows` of the rows:
    each column encoded in list passes (a bulk import's staging data: ~3x cheaper than value by value)."""
    if not columns or not columns[0]:
        return b""
    fields = zip(*map(_copy_column, columns), strict=True)
    return ("\n".join(map("\t".join, fields)) + "\n").encode()


def copy_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """Rows as COPY text-format data (`conn.copy_to_table(..., source=data, format="text")`): NULL, booleans, dates,
    text and one-dimensional text arrays. Built without a connection, so another process can build it."""
    return copy_columns([list(col) for col in zip(*rows, strict=True)])


async def insert_row(conn: Conn, table: str, columns: tuple[str, ...], row: Mapping[str, Any]) -> None:
    """Insert `row`'s values of `columns` into `table` (the store's one-row INSERT from a dict)."""
    marks = ", ".join(f"${n}" for n in range(1, len(columns) + 1))
    await conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", *(row[c] for c in columns))
