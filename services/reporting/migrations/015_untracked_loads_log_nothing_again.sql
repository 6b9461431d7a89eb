-- Migration 014 made the rebuild drop its 33 fact-log triggers while it loads and create them again afterwards.
-- Measured (bench/reporting_replay.py --events 30000, PostgreSQL CPU of the whole run): that DDL cost 0.1-0.3
-- CPU-s per rebuild, more than the transition tables it spared. A writer that refreshes in full afterwards (the
-- rebuild's bulk replay) sets reporting.untracked = 'on' again and the triggers log nothing for it.
CREATE OR REPLACE FUNCTION log_fact_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('reporting.untracked', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('INSERT INTO %I.%I SELECT o.*, -1 FROM old_rows o', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_log');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        EXECUTE format('INSERT INTO %I.%I SELECT n.*, 1 FROM new_rows n', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_log');
    END IF;
    RETURN NULL;
END $$;
