-- The audit log of personal-data reads (DESIGN §5): one row per read, written in the read's own transaction.
-- Rows are append-only: a trigger refuses UPDATE, TRUNCATE and any DELETE except the retention purge
-- (audit_purge), so even a service running as the table owner or a superuser cannot rewrite history through
-- SQL by accident. In production the service role additionally has no UPDATE/DELETE/TRUNCATE grant on this
-- table (deploy/postgres/init.sql); the purge function runs with its owner's rights.

CREATE TABLE audit_reads (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    subject       text NOT NULL,            -- who read (token `sub`)
    roles         text[] NOT NULL,          -- in which roles
    department    text,
    reader_path   text NOT NULL,            -- the reader's own org path (token)
    org_path      text NOT NULL,            -- the org path of what was read (auditors are scoped by this)
    action        text NOT NULL,            -- read | list | export | write
    resource_type text NOT NULL,            -- student, family, case, referral, visit, ...
    resource_id   text,                     -- the record read (null for lists and exports)
    subject_ids   text[] NOT NULL DEFAULT '{}',  -- the people whose data the response carried
    request_id    text
);
CREATE INDEX audit_reads_at ON audit_reads (at);
CREATE INDEX audit_reads_org ON audit_reads (org_path text_pattern_ops, id DESC);
CREATE INDEX audit_reads_resource ON audit_reads (resource_type, resource_id);
CREATE INDEX audit_reads_subject_ids ON audit_reads USING gin (subject_ids);

CREATE FUNCTION audit_reads_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    purge_before timestamptz := nullif(current_setting('hss.audit_purge_before', true), '')::timestamptz;
BEGIN
    IF TG_OP = 'DELETE' AND purge_before IS NOT NULL AND OLD.at < purge_before THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_reads is append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_reads_append_only BEFORE UPDATE OR DELETE ON audit_reads
    FOR EACH ROW EXECUTE FUNCTION audit_reads_guard();
CREATE TRIGGER audit_reads_no_truncate BEFORE TRUNCATE ON audit_reads
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reads_guard();

-- The only delete path: rows older than the retention. SECURITY DEFINER so a service role without DELETE
-- may run it; the minimum keeps a mistaken call (or a hostile one) from wiping recent history.
CREATE FUNCTION audit_purge(keep interval) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
    SET search_path FROM CURRENT AS $$
DECLARE
    cutoff  timestamptz := now() - keep;
    removed bigint;
BEGIN
    IF keep < interval '1 day' THEN
        RAISE EXCEPTION 'audit retention must be at least one day, got %', keep;
    END IF;
    PERFORM set_config('hss.audit_purge_before', cutoff::text, true);
    DELETE FROM audit_reads WHERE at < cutoff;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('hss.audit_purge_before', '', true);
    RETURN removed;
END $$;

-- Production roles (created by deploy/postgres/init.sql; absent in dev and tests): the service may read and
-- append, never change or delete, and purge only through audit_purge.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hss_service') THEN
        EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_reads FROM hss_service';
        EXECUTE 'GRANT SELECT, INSERT ON audit_reads TO hss_service';
        EXECUTE 'GRANT USAGE ON SEQUENCE audit_reads_id_seq TO hss_service';
        EXECUTE 'REVOKE ALL ON FUNCTION audit_purge(interval) FROM PUBLIC';
        EXECUTE 'GRANT EXECUTE ON FUNCTION audit_purge(interval) TO hss_service';
    END IF;
END $$;
