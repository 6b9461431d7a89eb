-- Percentiles are recomputed for every refreshed node from the cases under it: keep each case's ancestor
-- paths stored instead of computing them per refresh.
ALTER TABLE cases ADD COLUMN anc text[] GENERATED ALWAYS AS (path_ancestors(org_path)) STORED;
CREATE INDEX cases_anc ON cases USING gin (anc);
