-- The refresh folds deltas (issue 16): every change to a fact table whose figures add up row by row is logged by
-- a statement trigger as the row's old image (sg = -1) and new image (sg = +1). A refresh takes the log rows its
-- snapshot sees, computes their figures with the same definitions as a full recompute (store/refresh.py, each row
-- weighted by sg) and adds them to the leaf and node figures: its cost follows what changed, not the history of
-- every dirty class. A log table has its fact table's columns in the same order plus sg: a column added to a fact
-- table must be added to its log table too (the trigger fails loudly otherwise).
-- Figures that are not a sum over single rows (cases and referrals with their finding's campaign, pending
-- closures, distinct special-group members, units with a committee) are still recomputed per dirty leaf.
-- Unlogged like the figures: after a crash PostgreSQL empties both, and the refresher recomputes in full.
-- A writer that refreshes in full afterwards (the rebuild's bulk replay) sets reporting.untracked = 'on'.
CREATE FUNCTION log_fact_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('reporting.untracked', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('INSERT INTO %I SELECT o.*, -1 FROM old_rows o', TG_TABLE_NAME || '_log');
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        EXECUTE format('INSERT INTO %I SELECT n.*, 1 FROM new_rows n', TG_TABLE_NAME || '_log');
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['assignments', 'visits', 'findings', 'org_units', 'committees', 'sessions', 'attendance',
                             'teams', 'team_members', 'lectures', 'lecturers'] LOOP
        EXECUTE format('CREATE UNLOGGED TABLE %I (LIKE %I)', t || '_log', t);
        EXECUTE format('ALTER TABLE %I ADD COLUMN sg int NOT NULL', t || '_log');
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION log_fact_changes()', t || '_log_insert', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION log_fact_changes()', t || '_log_update', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows'
                       ' FOR EACH STATEMENT EXECUTE FUNCTION log_fact_changes()', t || '_log_delete', t);
    END LOOP;
END $$;

-- Distinct teachers and families per leaf, scope and metric, kept as multiplicities: how many fact rows name the
-- entity there. A leaf's distinct count moves by one when a multiplicity leaves or reaches zero.
CREATE UNLOGGED TABLE entity_counts (
    scope     text NOT NULL,
    leaf      text NOT NULL,
    metric    text NOT NULL,
    entity_id text NOT NULL,
    n         int NOT NULL,
    PRIMARY KEY (leaf, scope, metric, entity_id)
);

-- The figures are recomputed in full at the next refresh (figures_lost: node_metrics is empty).
TRUNCATE leaf_metrics, node_metrics, node_extra, entity_corrections;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hss_service') THEN
        EXECUTE 'GRANT TRUNCATE ON entity_counts, assignments_log, visits_log, findings_log, org_units_log,'
                ' committees_log, sessions_log, attendance_log, teams_log, team_members_log, lectures_log,'
                ' lecturers_log TO hss_service';
    END IF;
END $$;

-- A finding arriving after its case marks the case's leaf (store/facts.py: dependents).
CREATE INDEX cases_finding ON cases (finding_id);

-- Every refresh now adds to existing figure rows: room in each page lets those updates stay in the page (HOT, no
-- new index entry). A full refresh fills them anew (TRUNCATE, INSERT) with the room left.
ALTER TABLE leaf_metrics SET (fillfactor = 70);
ALTER TABLE node_metrics SET (fillfactor = 70);
ALTER TABLE entity_counts SET (fillfactor = 70);
