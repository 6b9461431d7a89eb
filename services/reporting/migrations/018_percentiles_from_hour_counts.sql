-- The percentiles (finding -> case, case -> first contact) are read from counts of cases per slot of hours (three
-- significant digits, at most two decimals), figure rows like any other (store/refresh.py PER_LEAF_PARTS), folded with
-- the rest: a refresh no longer sorts every case of the city under each refreshed ancestor, a cost that grew with
-- every case ever opened. node_extra and the cases' stored ancestors go; the figures are recomputed in full at the
-- next refresh (figures lost: node_metrics is empty).
DROP TABLE node_extra;
ALTER TABLE cases DROP COLUMN anc;
DROP FUNCTION path_ancestors(text);
TRUNCATE leaf_metrics, node_metrics, entity_corrections;
