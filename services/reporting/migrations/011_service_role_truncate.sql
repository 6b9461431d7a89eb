-- The refresh empties its derived tables with TRUNCATE (store/refresh.py), which the service role may do only on
-- these tables: it owns none, and the migrations grant it ordinary reads and writes only (shared/db.py).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hss_service') THEN
        EXECUTE 'GRANT TRUNCATE ON dirty_leaves, dirty_entities, entity_corrections, leaf_metrics, node_metrics,'
                ' node_extra TO hss_service';
    END IF;
END $$;
