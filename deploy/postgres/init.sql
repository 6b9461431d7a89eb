-- Runs once, when the postgres container initialises an empty data volume (then roles.sh).
-- One database per service: no service reads another's tables (DESIGN §2).
-- Each database's schema is created and migrated by the owner (the `migrate` service, `python -m services.<name>
-- migrate` as POSTGRES_USER); the services log in as their own roles (roles.sh), members of hss_service.
CREATE DATABASE committees;
CREATE DATABASE visits;
CREATE DATABASE outreach;
CREATE DATABASE reporting;

-- Every migration run grants hss_service what serving needs, and no more (shared/db.py `_grant_service_role`):
-- reads and writes on the service's tables, only SELECT and INSERT on the audit log (rows leave through
-- audit_purge alone), no DDL — it owns nothing.
CREATE ROLE hss_service NOLOGIN;
-- Only a service's own role may connect to its database (roles.sh grants CONNECT).
REVOKE CONNECT, TEMPORARY ON DATABASE committees, visits, outreach, reporting FROM PUBLIC;
