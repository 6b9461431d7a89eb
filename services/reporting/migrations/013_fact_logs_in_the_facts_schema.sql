-- A fact change is logged in the fact table's own schema, whatever the writer's search_path (a session that
-- writes `schema.visits` by its qualified name logs into `schema.visits_log`).
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
