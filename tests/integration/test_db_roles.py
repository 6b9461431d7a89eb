"""The services' database role (shared/db.py SERVICE_ROLE) on the real database: it serves, it cannot rewrite the
audit log or change the schema, and a service that does not migrate refuses to start on an unmigrated schema."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from shared import audit, db
from shared.auth import Principal, Role
from shared.devstack.postgres import SERVICE_LOGIN, service_url
from shared.testing.fixtures import drop_test_resources

pytestmark = pytest.mark.integration

MIGRATIONS = [db.KIT_MIGRATIONS, Path(__file__).parent / "kitapp_migrations"]  # the kit's test service
READER = Principal(subject="sa-1", roles=frozenset({Role.SCHOOL_ADMIN}), org_path="/c/d_1")


@pytest.fixture
async def schema(stack, unique):
    name = f"t_{unique}_roles"
    await db.migrate(stack.database_url, name, *MIGRATIONS)  # as the owner, as `python -m services.<x> migrate`
    try:
        yield name
    finally:
        await drop_test_resources(stack, f"t{unique}.", {name})


@pytest.fixture
async def service(stack, schema):
    conn = await db.connect(service_url(stack.database_url), schema)
    try:
        yield conn
    finally:
        await conn.close()


async def test_the_service_logs_in_as_its_own_role_and_owns_nothing(service, schema):
    assert await service.fetchval("SELECT current_user") == SERVICE_LOGIN
    owned = await service.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND pg_has_role(current_user, c.relowner, 'USAGE')",
        schema,
    )
    assert owned == 0


async def test_the_service_reads_writes_and_appends_to_the_audit_log(stack, schema, service):
    owner = await db.connect(stack.database_url, schema)
    try:
        await owner.execute(
            "INSERT INTO audit_reads (at, subject, roles, reader_path, org_path, action, resource_type)"
            " VALUES (now() - interval '400 days', 'old', '{auditor}', '/c', '/c', 'read', 'student')"
        )
    finally:
        await owner.close()
    async with service.transaction():
        await audit.record(service, READER, resource_type="student", resource_id="s-1", org_path="/c/d_1/s_1")
        await service.execute("INSERT INTO items (item_id, org_path, seq) VALUES ('i-1', '/c', 1)")
    await service.execute("UPDATE items SET seq = 2 WHERE item_id = 'i-1'")
    await service.execute("DELETE FROM items WHERE item_id = 'i-1'")
    assert await service.fetchval("SELECT count(*) FROM audit_reads") == 2
    assert await service.fetchval("SELECT audit_purge($1)", timedelta(days=365)) == 1  # the one delete path
    assert await service.fetchval("SELECT subject FROM audit_reads") == READER.subject


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_reads SET subject = 'someone else'",
        "DELETE FROM audit_reads",
        "TRUNCATE audit_reads",
        "INSERT INTO schema_migrations (name, checksum) VALUES ('x/999_x.sql', 'x')",
        "DELETE FROM schema_migrations",
    ],
)
async def test_the_service_cannot_rewrite_the_audit_log_or_the_migrations_record(service, sql):
    # Refused by the grants, before the audit log's append-only trigger is reached.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await service.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE sneaky (id int)",
        "ALTER TABLE audit_reads DISABLE TRIGGER audit_reads_append_only",
        "DROP TRIGGER audit_reads_append_only ON audit_reads",
        "ALTER TABLE items ADD COLUMN extra text",
        "DROP TABLE items",
        "CREATE INDEX sneaky ON items (seq)",
        "CREATE OR REPLACE FUNCTION audit_purge(keep interval) RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'",
    ],
)
async def test_the_service_runs_no_ddl(service, sql):
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await service.execute(sql)


async def test_a_service_that_does_not_migrate_refuses_an_unmigrated_schema(stack, unique):
    with pytest.raises(RuntimeError, match="lacks migrations"):
        await db.require_migrated(service_url(stack.database_url), f"t_{unique}_nothing", *MIGRATIONS)


async def test_a_service_that_does_not_migrate_starts_on_a_migrated_schema(stack, schema):
    await db.require_migrated(service_url(stack.database_url), schema, *MIGRATIONS)
