-- Distinct teachers and families per node were stored as one weight row per entity, scope, metric and path: a
-- million rows rewritten by the refreshes of a city-wide campaign. A leaf now counts its distinct entities
-- itself (count DISTINCT over its facts), and only entities seen at several paths keep rows: the -1 corrections at
-- the common ancestors of their paths (see domain/entities.py). Same columns, new meaning: the table is renamed
-- and emptied, and the figures are recomputed in full at the next refresh (figures_lost: node_metrics is empty).
ALTER TABLE entity_weights RENAME TO entity_corrections;
ALTER INDEX entity_weights_pkey RENAME TO entity_corrections_pkey;
ALTER INDEX entity_weights_node RENAME TO entity_corrections_node;
TRUNCATE entity_corrections, leaf_metrics, node_metrics, node_extra;
