-- A fact change is always logged while the log triggers exist: the rebuild's bulk replay, which refreshes in full
-- afterwards, drops them for the load and creates them again (store/schemas.bulk_load) instead of setting
-- reporting.untracked, since a statement trigger with transition tables copies every row it sees even when its
-- function returns at once.
CREATE OR REPLACE FUNCTION log_fact_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('INSERT INTO %I.%I SELECT o.*, -1 FROM old_rows o', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_log');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        EXECUTE format('INSERT INTO %I.%I SELECT n.*, 1 FROM new_rows n', TG_TABLE_SCHEMA, TG_TABLE_NAME || '_log');
    END IF;
    RETURN NULL;
END $$;

-- A refresh counts an entity's fact rows in the facts themselves (by the teacher and family indexes) instead of
-- keeping them per leaf: a full refresh no longer writes one row per entity, leaf, scope and metric.
DROP TABLE entity_counts;
