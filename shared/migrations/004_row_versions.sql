-- Optimistic concurrency (shared/versions.py): a mutable table has `version bigint NOT NULL DEFAULT 1` and
--   CREATE TRIGGER <table>_version BEFORE UPDATE ON <table> FOR EACH ROW EXECUTE FUNCTION bump_version();
-- so every update that changes the row moves its version, whichever statement (PATCH, state change, import upsert,
-- event handler) made it; an update that changes nothing keeps it.
CREATE FUNCTION bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.version := OLD.version + 1;
    END IF;
    RETURN NEW;
END $$;
