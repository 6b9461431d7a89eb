-- Runs once, when the postgres container initialises an empty data volume.
-- One database per service: no service reads another's tables (DESIGN §2).
-- Each service creates its own tables through its migrations at start-up.
CREATE DATABASE committees;
CREATE DATABASE visits;
CREATE DATABASE outreach;
CREATE DATABASE reporting;

-- Production roles. Migrations run as the owner (this superuser, or the migration Job's role); each service
-- logs in as its own role, a member of hss_service, which gets ordinary rights on the tables the owner creates
-- (default privileges below) but no UPDATE, DELETE or TRUNCATE on the audit log: the kit migration
-- shared/migrations/002_audit.sql revokes them from hss_service and grants only SELECT, INSERT and
-- EXECUTE on audit_purge (the retention purge, the only delete path). e.g.:
--   CREATE ROLE committees_svc LOGIN PASSWORD '...' IN ROLE hss_service;
CREATE ROLE hss_service NOLOGIN;
\connect committees
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO hss_service;
ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO hss_service;
\connect visits
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO hss_service;
ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO hss_service;
\connect outreach
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO hss_service;
ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO hss_service;
\connect reporting
ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO hss_service;
ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO hss_service;
