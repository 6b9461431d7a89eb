#!/usr/bin/env bash
# Runs once after init.sql, when the postgres container initialises an empty data volume: one login role per
# service (<name>_svc, password HSS_SERVICE_DB_PASSWORD), a member of hss_service, allowed into its own database only.
set -euo pipefail
: "${HSS_SERVICE_DB_PASSWORD:?set HSS_SERVICE_DB_PASSWORD}"
for name in committees visits outreach reporting; do
  psql -v ON_ERROR_STOP=1 -v role="${name}_svc" -v db="$name" -v pw="$HSS_SERVICE_DB_PASSWORD" \
    --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw' IN ROLE hss_service;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
SQL
done
